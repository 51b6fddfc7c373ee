"""audit/models.py: the five coursework networks the audit trains (the lessons' networks are
checked against these in tests/test_lessons.py), their parameter counts and their readings."""
import pytest
import torch
from torch import nn

from audit import models


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def test_the_reports_parameter_counts():
    assert n_params(models.net_01()) == 209_518   # the report's printed count (SPEC)
    assert n_params(models.net_02()) == 312_418   # likewise
    assert n_params(models.net_01(patch_size=4)) == 68_197
    assert n_params(models.net_03(width=16)) == 3_810_900  # the benchmark's CPU variant
    widths = [(196, 256), (4, 128), (128, 64), (256, 32), (32, 16), (16, 10)]
    assert n_params(models.net_04()) == sum(i * o + o for i, o in widths)
    assert n_params(models.net_04(bn=True)) == n_params(models.net_04()) + 2 * (256 + 128 + 64 + 32 + 16)


@pytest.mark.parametrize('build, shape', [
    (models.net_01, (2, 1, 28, 28)), (lambda: models.net_01(patch_size=4, residual=True), (2, 1, 28, 28)),
    (lambda: models.net_02(dropout=0.1), (2, 1, 28, 28)),
    (lambda: models.net_02(linear=models.TF32Linear), (2, 1, 28, 28)),
    (lambda: models.net_03(width=16), (2, 3, 32, 32)),
    (lambda: models.net_04(bn=True, dropout=0.01), (2, 1, 28, 28)),
    (lambda: models.net_04(bn=True, bn_over='rows'), (2, 1, 28, 28)),
    (lambda: models.net_05(hidden=64), (2, 1, 28, 28))])
def test_builders_and_their_options_give_class_scores(build, shape):
    torch.manual_seed(0)
    assert build()(torch.rand(shape)).shape == (2, 10)


def test_tf32_keeps_10_mantissa_bits_and_moves_a_gradient_by_about_a_percent():
    assert models.to_tf32(torch.tensor(1.0001)).item() == 1.0  # 1.0001 needs more than 10 bits
    assert models.to_tf32(torch.tensor(1.5)).item() == 1.5
    torch.manual_seed(0)
    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    exact = models.net_02().double()
    grads = {}
    for name, linear, dtype in (('float64', nn.Linear, torch.float64), ('tf32', models.TF32Linear, torch.float32)):
        net = models.net_02(linear=linear).to(dtype)
        net.load_state_dict(exact.state_dict())
        nn.functional.cross_entropy(net(x.to(dtype)), y).backward()
        grads[name] = net.mlp1[0].weight.grad.double()
    moved = ((grads['tf32'] - grads['float64']).norm() / grads['float64'].norm()).item()
    assert 1e-4 < moved < 0.05, moved  # far more than float32's rounding, far less than the gradient


def test_a_patch_size_that_does_not_divide_28_is_refused():
    with pytest.raises(ValueError, match='patch_size must divide 28'):
        models.net_01(patch_size=5)
