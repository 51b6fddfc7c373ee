import random

import numpy as np
import pytest
import torch

from my_utils import utils
from my_utils.devices import get_dataloader_workers, try_all_gpus, try_gpu, usable_cpus


def test_timer_records_and_sums():
    timer = utils.Timer()
    timer.stop()
    timer.start()
    timer.stop()
    assert len(timer.times) == 2
    assert timer.sum() == pytest.approx(sum(timer.times))
    assert timer.avg() == pytest.approx(timer.sum() / 2)
    assert timer.cumsum()[-1] == pytest.approx(timer.sum())


def test_accumulator_adds_tensors_and_numbers():
    acc = utils.Accumulator(2)
    acc.add(1, torch.tensor(2.5))
    acc.add(3, 0.5)
    assert (acc[0], acc[1]) == (4.0, 3.0)
    acc.reset()
    assert acc[0] == 0.0


def test_synthetic_data_and_linreg_recover_weights():
    torch.manual_seed(0)
    true_w, true_b = torch.tensor([2, -3.4]), 4.2
    X, y = utils.synthetic_data(true_w, true_b, 1000)
    assert X.shape == (1000, 2) and y.shape == (1000, 1)
    w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    for _ in range(3):
        for Xb, yb in utils.load_array((X, y), 10):
            loss = utils.squared_loss(utils.linreg(Xb, w, b), yb)
            loss.sum().backward()
            utils.sgd([w, b], 0.03, Xb.shape[0])
    assert torch.allclose(w.detach().reshape(-1), true_w, atol=0.01)
    assert abs(b.item() - true_b) < 0.01


def test_sgd_without_gradients_says_what_to_do():
    w = torch.ones(2, 1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    (w.sum() * 2).backward()  # b got no gradient: it was left out of the loss
    with pytest.raises(RuntimeError, match=r'sgd: parameter 1 \(shape \(1,\)\) has no gradient: create it '
                                           r'with requires_grad=True and call l.sum\(\).backward\(\)'):
        utils.sgd([w, b], 0.1, 1)
    assert torch.equal(w, torch.ones(2, 1)) and torch.equal(w.grad, torch.full((2, 1), 2.0))  # untouched


def test_load_array_shuffles_only_when_training():
    X = torch.arange(20.).reshape(10, 2)
    y = torch.arange(10)
    first = next(iter(utils.load_array((X, y), 10, is_train=False)))[1]
    assert torch.equal(first, y)


def test_corr2d_matches_known_values():
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert torch.equal(utils.corr2d(X, K), torch.tensor([[19.0, 25.0], [37.0, 43.0]]))


def test_set_seed_repeats_every_generator():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()
    utils.set_seed(7)
    first = draw()
    utils.set_seed(7)
    assert draw() == first


def test_d2l_tensor_aliases():
    x = torch.arange(6.0)
    assert utils.reshape(x, (2, 3)).shape == (2, 3)
    assert utils.reduce_sum(x) == 15
    assert utils.argmax(utils.reshape(x, (2, 3)), axis=1).tolist() == [2, 2]
    assert utils.size(x) == 6
    assert utils.astype(x, torch.int32).dtype == torch.int32


def test_devices_fall_back_to_cpu_without_gpu():
    device = try_gpu()
    assert isinstance(device, torch.device)
    if not torch.cuda.is_available():
        assert try_all_gpus() == [torch.device('cpu')]
        assert try_gpu(5).type in ('cpu', 'mps')


def test_dataloader_workers_never_exceed_usable_cpus():
    assert 0 <= get_dataloader_workers() <= min(4, usable_cpus())
