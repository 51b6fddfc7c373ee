"""Tests for my_utils.training: d2l parity, the d2l fixes, and train_ch6's contract.

Everything runs on small synthetic tensors in a few seconds, except one test that trains a
small MLP for 2 epochs on a real Fashion-MNIST subset (skipped unless MY_UTILS_DATA is set).
"""
import copy
import json
import math
import os
import re
import sys

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader, TensorDataset

import my_utils as d2l
from my_utils import train6, training, trainsetup, watchers
from my_utils.train6 import History, TrainingDiverged, init_weights, train_ch6
from my_utils.training import (accuracy, evaluate_accuracy, evaluate_accuracy_gpu, predict_ch3,
                               train_ch3, train_epoch_ch3)

FINAL_LOSS = re.compile(r'^loss (\d+\.\d{3}|nan|inf), train acc \d\.\d{3}, test acc \d\.\d{3}$')
SPEED = re.compile(r'^\d+\.\d examples/sec on cpu$')
PACKAGE = os.path.dirname(training.__file__)  # training's modules: training.py, train6.py, ...


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    # These models are tiny: on a loaded shared machine, torch's intra-op threads only wait
    # for each other (a 10 ms test took seconds with 2 threads).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CPU_ONLY = pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(),
                              reason='checks the CPU path; try_gpu() picks an accelerator here')


def make_data(n=320, features=16, classes=4, seed=0):
    """A learnable classification problem: the label is the argmax of a fixed linear map."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, features, generator=g)
    W = torch.randn(features, classes, generator=g)
    return X, (X @ W).argmax(dim=1)


def loaders(n_train=256, n_test=64, batch_size=64, shuffle=False, **kw):
    X, y = make_data(n_train + n_test, **kw)
    train = DataLoader(TensorDataset(X[:n_train], y[:n_train]), batch_size, shuffle=shuffle)
    test = DataLoader(TensorDataset(X[n_train:], y[n_train:]), batch_size)
    return train, test


def mlp(features=16, classes=4, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, classes))


def quiet(**kw):
    return dict(animate=False, device='cpu', **kw)


class Raises(nn.Module):
    """Wraps a net and raises `exc` on its `at`-th forward call in training mode."""

    def __init__(self, net, at, exc=KeyboardInterrupt):
        super().__init__()
        self.net, self.at, self.exc, self.calls = net, at, exc, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                raise self.exc()
        return self.net(x)


# ---------------------------------------------------------------------------------------------
# chapter 3 helpers

def test_accuracy_counts_correct_as_float():
    y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5], [0.9, 0.05, 0.05]])
    y = torch.tensor([0, 2, 0])
    assert accuracy(y_hat, y) == 2.0 and isinstance(accuracy(y_hat, y), float)
    assert accuracy(torch.tensor([1, 1, 0]), y) == 1.0  # already class indices


def test_evaluate_accuracy_no_grad_eval_mode_and_restores_modes():
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(16, 4)
            self.frozen = nn.BatchNorm1d(4)

        def forward(self, x):
            seen.append((torch.is_grad_enabled(), self.training, self.frozen.training))
            return self.frozen(self.lin(x))

    net = Spy()
    net.train()
    net.frozen.eval()  # a deliberately frozen submodule must stay frozen afterwards
    _, test = loaders()
    for fn in (evaluate_accuracy, evaluate_accuracy_gpu):
        seen.clear()
        acc = fn(net, test)
        assert 0.0 <= acc <= 1.0
        assert seen and all(s == (False, False, False) for s in seen)
        assert net.training and net.lin.training and not net.frozen.training


def test_evaluate_accuracy_matches_manual_count_and_takes_plain_functions():
    X, y = make_data(100)
    W = torch.randn(16, 4)
    it = DataLoader(TensorDataset(X, y), batch_size=32)
    expected = ((X @ W).argmax(1) == y).float().mean().item()
    assert evaluate_accuracy(lambda X: X @ W, it) == pytest.approx(expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_evaluate_accuracy_moves_data_to_a_gpu_net():
    net = mlp().cuda()
    _, test = loaders()
    assert 0.0 <= evaluate_accuracy(net, test) <= 1.0
    assert evaluate_accuracy_gpu(net, test) == pytest.approx(evaluate_accuracy(net, test))


def test_evaluate_accuracy_empty_raises():
    empty = DataLoader(TensorDataset(torch.zeros(0, 16), torch.zeros(0, dtype=torch.long)),
                       batch_size=8)
    with pytest.raises(ValueError, match='yielded no examples'):
        evaluate_accuracy(mlp(), empty)


def d2l_sgd(params, lr):
    return lambda batch_size: d2l.sgd(params, lr, batch_size)


@pytest.mark.parametrize('reduction', ['none', 'mean'])
@pytest.mark.parametrize('kind', ['optimizer', 'updater'])
def test_train_epoch_ch3_reduction_and_updater_give_the_same_step(reduction, kind):
    """All four combinations must take exactly d2l's minibatch-SGD step on the batch mean."""
    train, _ = loaders()
    reference, net = mlp(), mlp()
    ref_loss = 0.0
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    for X, y in train:  # plain minibatch SGD on the mean loss
        ref_opt.zero_grad()
        l = nn.functional.cross_entropy(reference(X), y)
        l.backward()
        ref_opt.step()
        ref_loss += l.item() * len(y)
    updater = (torch.optim.SGD(net.parameters(), lr=0.1) if kind == 'optimizer'
               else d2l_sgd(list(net.parameters()), 0.1))
    loss, acc = train_epoch_ch3(net, train, nn.CrossEntropyLoss(reduction=reduction), updater)
    assert loss == pytest.approx(ref_loss / 256, rel=1e-5)
    assert 0.0 <= acc <= 1.0
    for p, q in zip(net.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)


def test_train_ch3_from_scratch_book_code_and_no_assertions(capsys):
    """The book's softmax regression from scratch; with lr=0 nothing is learnt, and d2l's
    asserts on the result would fail: here it just finishes."""
    X, y = make_data(256)
    train = DataLoader(TensorDataset(X[:192], y[:192]), batch_size=64, shuffle=True)
    test = DataLoader(TensorDataset(X[192:], y[192:]), batch_size=64)
    W = torch.normal(0, 0.01, size=(16, 4), requires_grad=True)
    b = torch.zeros(4, requires_grad=True)

    def softmax(X):
        X_exp = torch.exp(X)
        return X_exp / X_exp.sum(1, keepdim=True)

    def net(X):
        return softmax(torch.matmul(X.reshape((-1, W.shape[0])), W) + b)

    def cross_entropy(y_hat, y):
        return -torch.log(y_hat[range(len(y_hat)), y])

    def updater(batch_size):
        return d2l.sgd([W, b], lr, batch_size)

    lr = 0.0
    assert train_ch3(net, train, test, cross_entropy, 2, updater) is None
    assert capsys.readouterr().out == ''  # d2l's train_ch3 prints nothing
    lr = 0.5
    train_ch3(net, train, test, cross_entropy, 3, updater, verbose=True)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and FINAL_LOSS.match(out[0])
    assert evaluate_accuracy(net, test) > 0.5  # it did learn once lr > 0


def test_train_ch3_concise_with_torch_optimizer():
    train, test = loaders()
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    trainer = torch.optim.SGD(net.parameters(), lr=0.5)
    train_ch3(net, train, test, nn.CrossEntropyLoss(reduction='none'), 3, trainer, animate=False)
    assert evaluate_accuracy(net, test) > 0.5


def test_chapter_3_helpers_do_not_use_chapter_6s_loop():
    # training.py (chapter 3) and book.py share evaluation.py's helpers with train6.py, but do
    # not import it: chapter 3 reads without chapter 6.
    import ast
    for module in (training, d2l.book):
        tree = ast.parse(open(module.__file__).read())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert 'train6' not in imported and 'evaluation' in imported, module.__name__


def test_train_ch3_bad_num_epochs():
    train, test = loaders()
    with pytest.raises(ValueError, match='num_epochs must be a whole number >= 1, got 0'):
        train_ch3(mlp(), train, test, nn.CrossEntropyLoss(), 0, None)


def test_predict_ch3_shows_images_with_labels():
    plt = pytest.importorskip('matplotlib.pyplot')
    X = torch.rand(8, 1, 28, 28)
    y = torch.arange(8)
    test = DataLoader(TensorDataset(X, y), batch_size=8)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    net.train()
    before = set(plt.get_fignums())
    predict_ch3(net, test, n=6)
    predict_ch3(net, test, n=20)  # more than one batch holds: shows what there is
    new = set(plt.get_fignums()) - before
    try:
        assert len(new) == 2
        axes = plt.figure(max(new)).axes
        assert len(axes) == 8
        assert axes[0].get_title().split('\n')[0] == 't-shirt'
        assert net.training  # the mode is put back
    finally:
        for num in new:
            plt.close(num)


# ---------------------------------------------------------------------------------------------
# train_ch6: output and History

def test_train_ch6_prints_d2l_lines_and_fills_history(capsys):
    train, test = loaders()
    net = mlp()
    h = train_ch6(net, train, test, 3, 0.5, **quiet())
    out = capsys.readouterr().out.splitlines()
    assert out[0] == 'training on cpu'
    assert FINAL_LOSS.match(out[1]) and SPEED.match(out[2]) and len(out) == 3
    assert out[1] == (f'loss {h.train_loss[-1]:.3f}, train acc {h.train_acc[-1]:.3f}, '
                      f'test acc {h.test_acc[-1]:.3f}')
    assert isinstance(h, History) and h.status == 'finished' and h.message == ''
    assert h.device == 'cpu' and h.epochs == len(h) == 3
    for field in (h.train_loss, h.train_acc, h.test_acc, h.lr, h.epoch_time, h.train_time):
        assert len(field) == 3 and all(isinstance(v, float) for v in field)
    assert h.lr == [0.5] * 3
    assert h.train_loss[-1] < h.train_loss[0]
    assert h.best_test_acc == max(h.test_acc)
    assert h.test_acc[h.best_epoch - 1] == h.best_test_acc
    assert h.examples_per_sec == pytest.approx(3 * 256 / sum(h.train_time))
    assert h.num_examples == 768
    assert all(e >= t for e, t in zip(h.epoch_time, h.train_time))
    assert not net.training  # left in eval mode, as d2l leaves it
    # the recorded test accuracy is what evaluate_accuracy_gpu measures on the final weights
    assert h.test_acc[-1] == pytest.approx(evaluate_accuracy_gpu(net, test))


def test_train_ch6_metrics_are_exact_when_weights_do_not_move():
    """With lr 0 the whole epoch sees one model: the means must equal a direct computation."""
    train, test = loaders()
    net = mlp()
    h = train_ch6(net, train, test, 1, None, optimizer=lambda p: torch.optim.SGD(p, lr=0.0),
                  init=None, verbose=False, **quiet())
    X, y = train.dataset.tensors
    with torch.no_grad():
        out = net(X)
    assert h.train_loss[0] == pytest.approx(nn.functional.cross_entropy(out, y).item(), rel=1e-5)
    assert h.train_acc[0] == pytest.approx((out.argmax(1) == y).float().mean().item())
    assert h.train_acc[0] == pytest.approx(evaluate_accuracy(net, train))


def test_history_dict_json_round_trip_final_and_repr():
    train, test = loaders()
    h = train_ch6(mlp(), train, test, 2, 0.5, verbose=False, **quiet())
    d = json.loads(json.dumps(h.to_dict()))
    back = History.from_dict(dict(d, added_later='ignored'))
    assert back == h and back.to_dict() == d
    f = h.final()
    assert f['epoch'] == 2 and f['train_loss'] == h.train_loss[-1]
    assert f['test_acc'] == h.test_acc[-1] and f['lr'] == 0.5 and f['status'] == 'finished'
    assert f['best_test_acc'] == h.best_test_acc and f['best_epoch'] == h.best_epoch
    # repr is the Out line of a cell ending in train_ch6: short and the same on every run
    assert repr(h) == 'History(finished, 2 epochs)'
    text = str(h)
    assert text == f'History({h.summary()})'
    assert text.startswith('History(finished, 2 epochs on cpu: loss ')
    assert f'test acc {h.test_acc[-1]:.3f}' in text and 'examples/sec' in text
    empty = History()
    assert math.isnan(empty.final()['train_loss']) and empty.final()['epoch'] == 0
    assert repr(empty) == str(empty) == 'History(finished, 0 epochs)'
    assert repr(History(train_loss=[1.0], train_acc=[0.5], test_acc=[0.5], lr=[0.1],
                        epoch_time=[1.0], train_time=[1.0])) == 'History(finished, 1 epoch)'


def test_host_reads_do_not_grow_with_the_number_of_batches(monkeypatch):
    """Reading a device tensor on the host waits for the device: it must happen per epoch
    (and once for the first-batch checks), never per batch."""
    reads = []
    for name in ('item', 'tolist', '__float__', '__int__', '__bool__', 'cpu', 'numpy'):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            if sys._getframe(1).f_code.co_filename.startswith(PACKAGE):  # not DataLoader's own
                reads.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, counted)
    counts = []
    for batch_size in (64, 8):  # 4 and 32 training batches per epoch
        train, test = loaders(batch_size=batch_size)
        reads.clear()
        train_ch6(mlp(), train, test, 2, 0.1, verbose=False, **quiet())
        counts.append(len(reads))
    assert counts[0] == counts[1] <= 2 * 2 + 1


def test_fewer_than_five_batches_per_epoch(capsys):
    """d2l's `num_batches // 5` divided by zero here; the plot is now updated once per epoch."""
    for batch_size in (256, 100):  # 1 batch, then 3 batches (the last one partial)
        train, test = loaders(batch_size=batch_size)
        h = train_ch6(mlp(), train, test, 2, 0.5, device='cpu')  # animate on: silent here
        assert h.status == 'finished' and h.epochs == 2
    assert 'examples/sec' in capsys.readouterr().out


def test_animator_gets_five_points_per_epoch(monkeypatch):
    # d2l's points at fifths of an epoch (x = epoch - 1 + batch / batches, train curves only),
    # then the epoch's end with the test accuracy.
    calls = []

    class FakeAnimator:
        def __init__(self, **kw):
            calls.append(('init', kw['legend'], kw['xlim']))

        def show(self):
            calls.append(('show',))

        def add(self, x, y):
            calls.append(('add', x, tuple(v is None for v in y)))

    monkeypatch.setattr(watchers, 'Animator', FakeAnimator)
    train, test = loaders(batch_size=16)  # 16 batches per epoch: points after 3, 6, 10, 13, 16
    train_ch6(mlp(), train, test, 3, 0.1, device='cpu', verbose=False)
    mid = (False, False, True)
    expected = [('init', ['train loss', 'train acc', 'test acc'], [0, 3]), ('show',)]
    for epoch in range(3):
        expected += [('add', epoch + b / 16, mid) for b in (3, 6, 10, 13)]
        expected.append(('add', epoch + 1, (False, False, False)))
    assert calls == expected
    calls.clear()
    train_ch6(mlp(), train, test, 2, 0.1, device='cpu', verbose=False, animate=False)
    assert calls == []


def test_verbose_false_prints_nothing(capsys):
    train, test = loaders()
    train_ch6(mlp(), train, test, 1, 0.1, verbose=False, **quiet())
    assert capsys.readouterr().out == ''


@CPU_ONLY
def test_default_device_is_try_gpu(capsys):
    train, test = loaders()
    h = train_ch6(mlp(), train, test, 1, 0.1, animate=False)
    assert h.device == str(d2l.try_gpu()) == 'cpu'
    assert capsys.readouterr().out.startswith('training on cpu\n')


def test_device_loader_path():
    fastdata = pytest.importorskip('my_utils.fastdata')
    images = torch.randint(0, 256, (192, 1, 8, 8), dtype=torch.uint8)
    labels = (images.float().mean((1, 2, 3)) > 127.5).long()
    train = fastdata.DeviceLoader(images[:128], labels[:128], 32, shuffle=True, device='cpu')
    test = fastdata.DeviceLoader(images[128:], labels[128:], 32, device='cpu')
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    h = train_ch6(net, train, test, 2, 0.5, verbose=False, **quiet())
    assert h.status == 'finished' and h.num_examples == 256


# ---------------------------------------------------------------------------------------------
# optimizer, loss, scheduler

def test_optimizer_instance_and_factory_train_identically():
    train, test = loaders()
    a, b = mlp(), mlp()
    b.load_state_dict(a.state_dict())
    ha = train_ch6(a, train, test, 2, None, optimizer=torch.optim.Adam(a.parameters(), lr=0.01),
                   init=None, verbose=False, **quiet())
    hb = train_ch6(b, train, test, 2, 123.0,  # lr is ignored when an optimizer is given
                   optimizer=lambda params: torch.optim.Adam(params, lr=0.01),
                   init=None, verbose=False, **quiet())
    assert ha.lr == hb.lr == [0.01, 0.01]
    assert ha.train_loss == pytest.approx(hb.train_loss)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)


def test_default_optimizer_is_sgd_with_lr():
    train, test = loaders()
    a, b = mlp(), mlp()
    train_ch6(a, train, test, 1, 0.3, init=None, verbose=False, **quiet())
    train_ch6(b, train, test, 1, None, optimizer=torch.optim.SGD(b.parameters(), lr=0.3),
              init=None, verbose=False, **quiet())
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize('reduction', ['none', 'sum'])
def test_loss_reduction_none_or_sum_backpropagates_the_batch_mean(reduction):
    train, test = loaders()
    a, b = mlp(), mlp()
    ha = train_ch6(a, train, test, 2, 0.3, init=None, verbose=False, **quiet())
    hb = train_ch6(b, train, test, 2, 0.3, loss=nn.CrossEntropyLoss(reduction=reduction),
                   init=None, verbose=False, **quiet())
    assert ha.train_loss == pytest.approx(hb.train_loss, rel=1e-5)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)


def test_optimizer_of_another_net_is_refused():
    train, test = loaders()
    other = mlp()
    with pytest.raises(ValueError, match="holds none of this net's parameters"):
        train_ch6(mlp(), train, test, 1, None, optimizer=torch.optim.SGD(other.parameters(), 0.1),
                  **quiet())


def test_scheduler_instance_and_factory_step_once_per_epoch():
    train, test = loaders()
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.4)
    h = train_ch6(net, train, test, 3, None, optimizer=opt,
                  scheduler=torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
                  verbose=False, **quiet())
    assert h.lr == pytest.approx([0.4, 0.2, 0.1])
    h = train_ch6(mlp(), train, test, 3, 0.4, verbose=False, **quiet(
        scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.1)))
    assert h.lr == pytest.approx([0.4, 0.4, 0.04])


def test_reduce_lr_on_plateau_is_stepped_with_the_train_loss():
    metrics = []

    class Recording(torch.optim.lr_scheduler.ReduceLROnPlateau):
        def step(self, metrics_value, *args, **kwargs):
            metrics.append(metrics_value)
            return super().step(metrics_value, *args, **kwargs)

    train, test = loaders()
    # threshold 10 (relative, mode min): no loss ever counts as better, so with patience 0 the
    # lr is cut after every epoch
    h = train_ch6(mlp(), train, test, 3, 0.5, verbose=False, **quiet(
        scheduler=lambda o: Recording(o, factor=0.1, patience=0, threshold=10)))
    assert h.lr == pytest.approx([0.5, 0.05, 0.005])
    assert metrics == h.train_loss


def test_scheduler_for_another_optimizer_is_refused():
    train, test = loaders()
    other = torch.optim.SGD(mlp().parameters(), lr=0.1)
    with pytest.raises(ValueError, match='scheduler was created for another optimizer'):
        train_ch6(mlp(), train, test, 1, 0.1, **quiet(
            scheduler=torch.optim.lr_scheduler.StepLR(other, 1)))


# ---------------------------------------------------------------------------------------------
# init

def big_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(16, 32, 3), nn.Flatten(), nn.LayerNorm(8),
                         nn.Linear(256, 256), nn.Linear(256, 512))


def test_init_normal_gives_std_one_and_zero_bias():
    net = init_weights(big_net(), 'normal')
    for m in (net[0], net[3], net[4]):
        assert m.weight.mean().abs() < 0.05
        assert m.weight.std().item() == pytest.approx(1.0, abs=0.03)
        assert torch.all(m.bias == 0)
    assert torch.all(net[2].weight == 1) and torch.all(net[2].bias == 0)  # LayerNorm untouched


@pytest.mark.parametrize('name,std', [
    ('xavier', lambda fi, fo: math.sqrt(2 / (fi + fo))),  # uniform with this std
    ('xavier_normal', lambda fi, fo: math.sqrt(2 / (fi + fo))),
    ('kaiming', lambda fi, fo: math.sqrt(2 / fi)),
])
def test_init_xavier_and_kaiming_stds_and_bias_kept(name, std):
    net = big_net()
    bias_before = net[4].bias.clone()
    init_weights(net, name)
    for m, fi, fo in ((net[0], 16 * 9, 32 * 9), (net[3], 256, 256), (net[4], 256, 512)):
        assert m.weight.std().item() == pytest.approx(std(fi, fo), rel=0.1)
    if name == 'xavier':
        bound = math.sqrt(6 / (256 + 512))
        assert net[4].weight.abs().max() <= bound
    torch.testing.assert_close(net[4].bias, bias_before)  # only 'normal' resets biases


def test_init_none_callable_and_aliases():
    net = big_net()
    before = copy.deepcopy(net.state_dict())
    assert init_weights(net, None) is net
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    seen = []
    init_weights(net, lambda m: seen.append(type(m).__name__))
    assert seen.count('Linear') == 2 and seen[-1] == 'Sequential'
    init_weights(net, 'Kaiming_Normal')  # case-insensitive alias


def test_init_unknown_name_and_bad_type():
    with pytest.raises(ValueError, match=r"unknown init 'glorot'; use one of 'xavier'.*"
                                         r"'xavier_normal'.*'kaiming'.*'normal'.*None"):
        init_weights(big_net(), 'glorot')
    with pytest.raises(TypeError, match='init must be one of'):
        init_weights(big_net(), 3)


def test_init_lazy_layer_explains():
    with pytest.raises(ValueError, match='run one batch through the net first'):
        init_weights(nn.Sequential(nn.LazyLinear(4)), 'xavier')


def test_train_ch6_applies_init():
    train, test = loaders()
    seen = []
    train_ch6(mlp(), train, test, 1, 0.1, init=lambda m: seen.append(type(m).__name__),
              verbose=False, **quiet())
    assert seen.count('Linear') == 2


# ---------------------------------------------------------------------------------------------
# divergence and Ctrl-C

def test_divergence_stops_with_status_and_one_message(capsys):
    train, test = loaders()
    h = train_ch6(mlp(), train, test, 10, 1e10, init='normal', **quiet())
    out = capsys.readouterr().out.splitlines()
    assert h.status == 'diverged'
    assert h.epochs < 10 and not math.isfinite(h.train_loss[-1])
    assert all(math.isfinite(v) for v in h.train_loss[:-1])
    assert len(h.test_acc) == h.epochs and 0.0 <= h.test_acc[-1] <= 1.0
    assert out[0] == 'training on cpu'
    assert FINAL_LOSS.match(out[1]) and out[1].startswith(('loss nan', 'loss inf'))
    assert SPEED.match(out[2])
    assert re.fullmatch(rf'training stopped: the loss became (nan|inf) in epoch {h.epochs} '
                        r'\(lr 1e\+10\)\. Try a lower learning rate, gradient clipping or a '
                        r'different init\.', out[3])
    assert len(out) == 4 and h.message == out[3]


def test_divergence_can_raise():
    train, test = loaders()
    with pytest.raises(TrainingDiverged, match='loss became') as info:
        train_ch6(mlp(), train, test, 10, 1e10, init='normal', on_diverge='raise',
                  verbose=False, **quiet())
    assert info.value.history.status == 'diverged'


INTERRUPTED = ('training interrupted in epoch {}; the {} finished epoch(s) are in err.history; '
               'train_ch6(..., init=None) continues from the current weights')


def test_keyboard_interrupt_in_epoch_2_prints_one_line_and_raises_with_the_history(capsys):
    # Raised again, so that a loop over runs in a cell stops (a run store relies on it).
    train, test = loaders()  # 4 batches per epoch: call 6 is in epoch 2
    with pytest.raises(KeyboardInterrupt) as info:
        train_ch6(Raises(mlp(), at=6), train, test, 5, 0.1, **quiet())
    h = info.value.history
    assert h.status == 'interrupted' and h.epochs == 1
    assert len(h.test_acc) == len(h.lr) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ['training on cpu', INTERRUPTED.format(2, 1)] and h.message == out[-1]
    assert info.value.__notes__ == ['train_ch6: the 1 finished epoch(s) are in err.history']


def test_a_loop_over_runs_stops_at_ctrl_c():
    train, test = loaders()
    runs = []
    with pytest.raises(KeyboardInterrupt):
        for at in (100, 2, 100):  # the second run is interrupted
            runs.append(train_ch6(Raises(mlp(), at=at), train, test, 1, 0.1, verbose=False,
                                  **quiet()))
    assert len(runs) == 1


def test_keyboard_interrupt_from_the_iterator():
    train, test = loaders()

    class Stops:
        def __init__(self):
            self.epochs = 0

        def __iter__(self):
            self.epochs += 1
            for i, batch in enumerate(train):
                if self.epochs == 2 and i == 1:
                    raise KeyboardInterrupt
                yield batch

    with pytest.raises(KeyboardInterrupt) as info:
        train_ch6(mlp(), Stops(), test, 5, 0.1, verbose=False, **quiet())
    assert info.value.history.status == 'interrupted' and info.value.history.epochs == 1


def test_keyboard_interrupt_in_epoch_1_prints_only_the_message(capsys):
    train, test = loaders()
    with pytest.raises(KeyboardInterrupt) as info:
        train_ch6(Raises(mlp(), at=1), train, test, 3, 0.1, **quiet())
    assert info.value.history.epochs == 0 and info.value.history.status == 'interrupted'
    assert not hasattr(info.value, '__notes__')  # nothing to point at
    assert capsys.readouterr().out.splitlines() == ['training on cpu', INTERRUPTED.format(1, 0)]


def test_other_errors_propagate():
    train, test = loaders()
    with pytest.raises(RuntimeError):
        train_ch6(Raises(mlp(), at=2, exc=RuntimeError), train, test, 2, 0.1, **quiet())


def test_an_error_in_epoch_2_keeps_the_finished_epochs():
    train, test = loaders()  # 4 batches per epoch: call 7 is in epoch 2
    with pytest.raises(RuntimeError) as info:
        train_ch6(Raises(mlp(), at=7, exc=RuntimeError), train, test, 3, 0.1, **quiet())
    h = info.value.history
    assert h.epochs == 1 and h.status == 'failed' and h.message == 'RuntimeError in epoch 2'
    assert info.value.__notes__ == ['train_ch6: the 1 finished epoch(s) are in err.history']


# ---------------------------------------------------------------------------------------------
# amp / compile off CUDA

@pytest.mark.skipif(torch.cuda.is_available(), reason='the note is for non-CUDA devices')
def test_amp_is_noted_and_ignored_off_cuda(capsys):
    train, test = loaders()
    a, b = mlp(), mlp()
    train_ch6(a, train, test, 1, 0.1, amp=True, init=None, **quiet())
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ['training on cpu', 'note: amp=True ignored on cpu (used on CUDA only)']
    assert len(out) == 4
    train_ch6(b, train, test, 1, 0.1, init=None, **quiet())
    for p, q in zip(a.parameters(), b.parameters()):  # amp changed nothing on the CPU
        torch.testing.assert_close(p, q)


def test_compile_without_a_cpp_compiler_is_noted_and_ignored(capsys, monkeypatch):
    monkeypatch.setenv('PATH', '')
    monkeypatch.delenv('CXX', raising=False)
    train, test = loaders()
    h = train_ch6(mlp(), train, test, 1, 0.1, compile=True, **quiet())
    out = capsys.readouterr().out.splitlines()
    assert out[1] == ('note: compile=True ignored: torch.compile needs a C++ compiler on the '
                      'CPU (none found on PATH; install g++ or clang, or set CXX)')
    assert h.status == 'finished'


@pytest.mark.skipif(not trainsetup._have_cxx_compiler(), reason='needs a C++ compiler')
def test_compile_on_cpu_trains_like_eager(capsys):
    # Compiled C++ kernels round differently, so the runs agree closely, not bit for bit.
    train, test = loaders()
    eager, compiled = mlp(), mlp()
    compiled.load_state_dict(eager.state_dict())
    h_eager = train_ch6(eager, train, test, 2, 0.1, init=None, **quiet())
    h_compiled = train_ch6(compiled, train, test, 2, 0.1, init=None, compile=True, **quiet())
    assert 'note' not in capsys.readouterr().out
    assert h_compiled.status == 'finished' and h_compiled.epochs == 2
    assert h_compiled.train_loss == pytest.approx(h_eager.train_loss, rel=1e-4)
    assert h_compiled.test_acc == pytest.approx(h_eager.test_acc, abs=0.01)


# ---------------------------------------------------------------------------------------------
# channels_last

def image_loaders(n_train=512, n_test=64, batch_size=32, channels=3):
    """Small noisy images whose label is the channel made brighter: a conv net learns it in a
    few steps."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(channels, (n_train + n_test,), generator=g)
    X = torch.rand(n_train + n_test, channels, 8, 8, generator=g)
    X[torch.arange(len(y)), y] += 1.0
    train = DataLoader(TensorDataset(X[:n_train], y[:n_train]), batch_size)
    test = DataLoader(TensorDataset(X[n_train:], y[n_train:]), batch_size)
    return train, test


def small_conv_net(channels=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, channels))


def test_channels_last_trains_like_the_default_layout():
    # The layout changes where numbers sit in memory, not what is computed: the two runs agree
    # up to the order of float sums inside the convolution.
    train, test = image_loaders()
    default, nhwc = small_conv_net(), small_conv_net()
    h_default = train_ch6(default, train, test, 2, 0.2, init=None, verbose=False, **quiet())
    h_nhwc = train_ch6(nhwc, train, test, 2, 0.2, init=None, verbose=False, channels_last=True,
                       **quiet())
    assert nhwc[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not default[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert h_nhwc.train_loss == pytest.approx(h_default.train_loss, rel=1e-4)
    assert h_nhwc.test_acc == pytest.approx(h_default.test_acc, abs=1 / 64)
    assert h_nhwc.train_acc[-1] > 0.9  # it learned: chance is 1/3


class ViewsItsFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        x = self.conv(x)
        return self.fc(x.view(x.shape[0], -1))  # .view needs the default layout


def test_channels_last_with_a_view_in_forward_says_what_to_change():
    train, test = image_loaders()
    train_ch6(ViewsItsFeatures(), train, test, 1, 0.1, verbose=False, **quiet())  # fine by default
    with pytest.raises(RuntimeError, match=r'channels_last=True.*\.reshape\(\) or nn\.Flatten'):
        train_ch6(ViewsItsFeatures(), train, test, 1, 0.1, channels_last=True, verbose=False,
                  **quiet())


def test_train_step_and_epoch_totals_match_a_plain_loop():
    # The step train_ch6 (and the benchmark) use: the same update as the textbook loop, and the
    # loss and accuracy summed on the device.
    train, _ = loaders()
    ours, plain = mlp(), mlp()
    plain.load_state_dict(ours.state_dict())
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.1)
    opt_plain = torch.optim.SGD(plain.parameters(), lr=0.1)
    loss = nn.CrossEntropyLoss()
    totals = train6.EpochTotals('cpu')
    loss_sum = correct = seen = 0
    for X, y in train:
        train6.train_step(ours, X, y, loss, opt_ours, totals)
        opt_plain.zero_grad()
        y_hat = plain(X)
        l = loss(y_hat, y)
        l.backward()
        opt_plain.step()
        loss_sum += l.item() * len(y)
        correct += int((y_hat.argmax(1) == y).sum())
        seen += len(y)
    for p, q in zip(ours.parameters(), plain.parameters()):
        torch.testing.assert_close(p, q)
    assert totals.seen == seen
    mean_loss, acc = totals.read()
    assert mean_loss == pytest.approx(loss_sum / seen, rel=1e-5)
    assert acc == correct / seen


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_amp_and_compile_on_cuda():
    train, test = loaders(n_train=512)
    h = train_ch6(mlp(), train, test, 3, 0.5, device='cuda', amp=True, compile=True,
                  animate=False, verbose=False)
    assert h.status == 'finished' and h.device.startswith('cuda:')
    assert h.train_loss[-1] < h.train_loss[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_a_conv_net_in_channels_last_with_amp_on_cuda():
    train, test = image_loaders()
    net = small_conv_net()
    h = train_ch6(net, train, test, 2, 0.2, device='cuda', amp=True, channels_last=True,
                  animate=False, verbose=False)
    assert h.status == 'finished' and h.train_acc[-1] > 0.9
    assert net[0].weight.is_cuda
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------------------------------------
# bad inputs

@pytest.mark.parametrize('num_epochs', [0, -1, 2.5, True])
def test_bad_num_epochs(num_epochs):
    train, test = loaders()
    with pytest.raises(ValueError, match=r'num_epochs must be a whole number >= 1, got '):
        train_ch6(mlp(), train, test, num_epochs, 0.1, **quiet())


@pytest.mark.parametrize('lr', [0, -0.1, None, float('nan'), '0.1'])
def test_bad_lr_without_optimizer(lr):
    train, test = loaders()
    with pytest.raises(ValueError, match='lr must be a positive number when no optimizer'):
        train_ch6(mlp(), train, test, 1, lr, **quiet())


@pytest.mark.parametrize('head,got', [
    (lambda: MeanLast(), r'\(64,\)'),
    (lambda: nn.Unflatten(1, (4, 1)), r'\(64, 4, 1\)'),
])
def test_wrong_output_shape_is_named_before_cross_entropy(head, got):
    train, test = loaders()
    net = nn.Sequential(mlp(), head())
    with pytest.raises(ValueError, match=rf'the model output has shape {got}, but '
                                         r'\(batch, classes\) = \(64, num_classes\) is expected'):
        train_ch6(net, train, test, 1, 0.1, **quiet())


class MeanLast(nn.Module):
    def forward(self, x):
        return x.mean(-1)


def test_output_batch_mismatch():
    train, test = loaders()
    net = nn.Sequential(mlp(), nn.Flatten(0), nn.Unflatten(0, (128, 2)))
    with pytest.raises(ValueError, match=r'shape \(128, 2\).*first dimension must be the batch'):
        train_ch6(net, train, test, 1, 0.1, **quiet())


def test_labels_beyond_the_model_outputs():
    train, test = loaders(classes=4)
    net = nn.Sequential(nn.Linear(16, 3))  # 3 outputs for 4 classes
    with pytest.raises(ValueError, match=r'the labels go up to 3, but the model outputs 3 class '
                                         r'scores per example \(output shape \(64, 3\)\); its '
                                         r'last layer needs at least 4 outputs'):
        train_ch6(net, train, test, 1, 0.1, **quiet())


@pytest.mark.parametrize('init', ['xavier', 'normal'])
def test_a_call_stopped_by_the_first_batch_leaves_the_weights_as_they_were(init):
    train = labelled_batches(bad_at=1, bad_label=9)
    _, test = loaders()
    net = mlp()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match='batch 1: the labels go up to 9'):
        train_ch6(net, train, test, 1, 0.1, init=init, **quiet())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    train_ch6(net, labelled_batches(bad_at=2, bad_label=0), test, 1, 0.1, init=init, **quiet())
    assert not all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_float_labels_and_uint8_inputs():
    X, y = make_data(128)
    test = DataLoader(TensorDataset(X, y), 64)
    float_labels = DataLoader(TensorDataset(X, y.float()), 64)
    with pytest.raises(ValueError, match=r'labels are torch.float32 numbers.*y.long\(\)'):
        train_ch6(mlp(), float_labels, test, 1, 0.1, **quiet())
    uint8 = DataLoader(TensorDataset((X.abs() * 50).to(torch.uint8), y), 64)
    with pytest.raises(ValueError, match=r'inputs are uint8.*X.float\(\) / 255'):
        train_ch6(mlp(), uint8, test, 1, 0.1, **quiet())


def test_empty_iterators():
    train, test = loaders()
    empty = DataLoader(TensorDataset(torch.zeros(0, 16), torch.zeros(0, dtype=torch.long)),
                       batch_size=8)
    with pytest.raises(ValueError, match='train_iter is empty'):
        train_ch6(mlp(), empty, test, 1, 0.1, **quiet())
    with pytest.raises(ValueError, match='test_iter is empty'):
        train_ch6(mlp(), train, empty, 1, 0.1, **quiet())
    with pytest.raises(ValueError, match='train_iter yielded no examples'):
        train_ch6(mlp(), (b for b in []), test, 1, 0.1, **quiet())
    with pytest.raises(ValueError, match='train_iter yielded no examples'):
        train_epoch_ch3(mlp(), [], nn.CrossEntropyLoss(), lambda n: None)


def test_bad_types():
    train, test = loaders()
    with pytest.raises(TypeError, match='train_ch6 needs an nn.Module, got function'):
        train_ch6(lambda X: X, train, test, 1, 0.1, **quiet())
    with pytest.raises(TypeError, match='optimizer must be None, a torch.optim.Optimizer'):
        train_ch6(mlp(), train, test, 1, 0.1, optimizer='adam', **quiet())
    with pytest.raises(TypeError, match='the optimizer function must return'):
        train_ch6(mlp(), train, test, 1, 0.1, optimizer=lambda p: None, **quiet())
    with pytest.raises(TypeError, match='scheduler must be None, an LR scheduler'):
        train_ch6(mlp(), train, test, 1, 0.1, scheduler='step', **quiet())
    with pytest.raises(ValueError, match="on_diverge must be 'stop' or 'raise'"):
        train_ch6(mlp(), train, test, 1, 0.1, on_diverge='ignore', **quiet())
    with pytest.raises(ValueError, match='the net has no parameters to train'):
        train_ch6(nn.Flatten(), train, test, 1, 0.1, **quiet())


@pytest.mark.skipif(torch.cuda.is_available(), reason='CUDA is there')
def test_cuda_asked_without_cuda():
    train, test = loaders()
    with pytest.raises(ValueError, match='CUDA is not available here'):
        train_ch6(mlp(), train, test, 1, 0.1, device='cuda', animate=False)


# ---------------------------------------------------------------------------------------------
# the one test on real data

@pytest.mark.skipif(not os.environ.get('MY_UTILS_DATA'), reason='MY_UTILS_DATA is not set')
def test_real_fashion_mnist_subset_learns():
    datasets = pytest.importorskip('torchvision.datasets')
    root = os.environ['MY_UTILS_DATA']
    tr = datasets.FashionMNIST(root=root, train=True, download=False)
    te = datasets.FashionMNIST(root=root, train=False, download=False)

    def subset(ds, n):
        return TensorDataset(ds.data[:n].unsqueeze(1).float() / 255, ds.targets[:n])

    torch.manual_seed(0)
    train = DataLoader(subset(tr, 6000), batch_size=64, shuffle=True)
    test = DataLoader(subset(te, 1000), batch_size=256)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    h = train_ch6(net, train, test, 2, 0.1, verbose=False, **quiet())
    assert h.status == 'finished'
    assert h.test_acc[-1] > 0.6  # chance is 0.1


def test_on_epoch_is_called_after_each_finished_epoch(monkeypatch, capsys):
    monkeypatch.setenv('MY_UTILS_PROGRESS', '1')  # no longer read: it changes nothing
    seen = []
    train_iter, test_iter = loaders()
    h = train_ch6(mlp(), train_iter, test_iter, 2, 0.1, verbose=False, **quiet(
        on_epoch=lambda epoch, history: seen.append((epoch, history.epochs, history))))
    assert [s[:2] for s in seen] == [(1, 1), (2, 2)] and seen[0][2] is h
    assert capsys.readouterr() == ('', '')
    with pytest.raises(TypeError, match=r'on_epoch must be None or a function \(epoch, history\)'):
        train_ch6(mlp(), train_iter, test_iter, 2, 0.1, **quiet(on_epoch='print'))


def test_verbose_2_adds_a_line_per_epoch(capsys):
    train_iter, test_iter = loaders()
    train_ch6(mlp(), train_iter, test_iter, 2, 0.1, verbose=2, **quiet())
    out = capsys.readouterr().out.splitlines()
    assert [line.split(':')[0] for line in out[1:3]] == ['epoch 1/2', 'epoch 2/2']
    assert FINAL_LOSS.match(out[3]) and SPEED.match(out[4]) and len(out) == 5


# ---------------------------------------------------------------------------------------------
# student mistakes: one clear error, raised before anything changes

def state(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize('device,why', [
    ('mps', 'is not available on this machine'),
    ('tpu', 'is not a device name torch knows'),
    ('gpu', 'is not a device name torch knows'),
])
def test_a_device_this_machine_lacks_is_refused_first(device, why, capsys):
    if device == 'mps' and torch.backends.mps.is_available():
        pytest.skip('MPS is there')
    train, test = loaders()
    net = mlp()
    before = state(net)
    with pytest.raises(ValueError, match=rf"device '{device}' {why}; this machine has cpu.*"
                                         r'device=None \(mu.try_gpu\(\) picks the best'):
        train_ch6(net, train, test, 1, 0.1, device=device, animate=False)
    assert capsys.readouterr().out == ''  # not even 'training on'
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)  # weights untouched


def labelled_batches(bad_at, bad_label, n=4, size=16):
    X, y = make_data(n * size)
    batches = [(X[i * size:(i + 1) * size], y[i * size:(i + 1) * size].clone()) for i in range(n)]
    batches[bad_at - 1][1][3] = bad_label
    return batches


@pytest.mark.parametrize('bad_label,match', [
    (7, r'the labels go up to 7, but the model outputs 4 class scores per example'),
    (-1, r'the labels go down to -1, but class indices start at 0'),
])
def test_a_bad_label_after_the_first_batch_is_named_not_an_index_error(bad_label, match):
    train = labelled_batches(bad_at=3, bad_label=bad_label)
    _, test = loaders()
    with pytest.raises(ValueError, match=rf'^train_ch6: epoch 1, batch 3: {match}') as info:
        train_ch6(mlp(), train, test, 1, 0.1, **quiet())
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no torch trace


def test_a_negative_label_in_the_first_batch():
    train = labelled_batches(bad_at=1, bad_label=-2)
    _, test = loaders()
    with pytest.raises(ValueError, match=r'batch 1: the labels go down to -2'):
        train_ch6(mlp(), train, test, 1, 0.1, **quiet())


def test_the_device_side_label_watch_costs_no_read_and_names_the_batch():
    # For labels that reach train_ch6 already on an accelerator (checked here on the CPU): in
    # the first epoch they are clamped for the loss, their range kept on the device, and the
    # epoch's read raises, naming the first bad batch.
    net, loss = mlp(), nn.CrossEntropyLoss()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    totals = train6.EpochTotals('cpu')
    for X, y in labelled_batches(bad_at=3, bad_label=9):
        train6.train_step(net, X, totals.watch_labels(y, 4), loss, opt, totals)
    with pytest.raises(ValueError, match=r'^batch 3: the labels go up to 9, but the model '
                                         r'outputs 4 class scores'):
        totals.read()
    # with good labels the watch changes nothing
    a, b = mlp(), mlp()
    for net, watch in ((a, False), (b, True)):
        opt, totals = torch.optim.SGD(net.parameters(), lr=0.1), train6.EpochTotals('cpu')
        for X, y in labelled_batches(bad_at=1, bad_label=0):
            train6.train_step(net, X, totals.watch_labels(y, 4) if watch else y, loss, opt,
                              totals)
        assert totals.read()[1] > 0
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)


class CountOps(TorchDispatchMode):
    """Records the name of every tensor operation torch dispatches inside the `with`."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


LABEL_CHECK_OPS = {'min', 'max', 'minimum', 'maximum', 'clamp', 'where', 'lt', 'ge', 'bitwise_or'}


def test_one_train_step_runs_the_plain_steps_operations_and_the_totals_only():
    # The fast path's step: exactly the operations of the textbook step (forward, loss,
    # backward, SGD) plus the on-device totals. A label check in every step (min, max, clamp,
    # where, ... on the device) would add operations, and device work, to every batch.
    X, y = make_data(32)
    loss = nn.CrossEntropyLoss()
    ours, plain = mlp(), mlp()
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.1)
    opt_plain = torch.optim.SGD(plain.parameters(), lr=0.1)
    totals, reference = train6.EpochTotals('cpu'), train6.EpochTotals('cpu')
    for _ in range(2):  # the second step is counted: the first may create optimizer state
        with CountOps() as step:
            train6.train_step(ours, X, y, loss, opt_ours, totals)
        with CountOps() as textbook:
            opt_plain.zero_grad(set_to_none=True)
            y_hat = plain(X)
            l = loss(y_hat, y)
            reference.add(l * len(y), y_hat, y)  # what train_step adds to its totals
            l.backward()
            opt_plain.step()
    assert sorted(step.ops) == sorted(textbook.ops)
    assert not LABEL_CHECK_OPS & set(step.ops), step.ops


def test_on_an_accelerator_labels_are_checked_once_per_loader_not_per_step():
    # The policy train_ch6 applies on a GPU (a device name is enough: nothing runs there).
    from my_utils.fastdata import DeviceLoader
    from my_utils.labelguard import LabelGuard
    gpu, loss = torch.device('cuda'), nn.CrossEntropyLoss()
    totals = train6.EpochTotals('cpu')
    totals.num_classes = 4
    X, y = make_data(64)
    # A DeviceLoader read its labels' range when it was built: later batches cost nothing.
    built = DeviceLoader(torch.zeros(64, 1, 4, 4, dtype=torch.uint8), y, 16)
    assert built.label_range == (int(y.min()), int(y.max()))
    guard = LabelGuard(built, gpu, loss, (nn.CrossEntropyLoss,))
    guard.learn(totals)
    assert guard.label_range == built.label_range
    labels = [yb for _, yb in built]
    with CountOps() as counted:
        for epoch in (1, 2):
            for yb in labels:
                assert guard.labels_for_step(yb, totals, epoch) is yb
    assert counted.ops == []
    # Labels on the host are checked there, before they move: a bad one is named.
    guard = LabelGuard([(X, y)], gpu, loss, (nn.CrossEntropyLoss,))
    guard.learn(totals)
    assert guard.label_range is None and guard.active
    bad = y.clone()
    bad[5] = 4
    with pytest.raises(ValueError, match=r'the labels go up to 4, but the model outputs 4'):
        guard.labels_for_step(bad, totals, 2)
    # On the CPU the loss raises by itself: no guard at all.
    assert not LabelGuard([(X, y)], torch.device('cpu'), loss, (nn.CrossEntropyLoss,)).active


def test_a_device_loader_whose_labels_exceed_the_outputs_is_refused_at_the_first_batch():
    # Its range was read when it was built, so a bad label in its last batch is named before
    # the first step, and the weights are as they were.
    from my_utils.fastdata import DeviceLoader
    X, y = make_data(64)
    y[-1] = 6
    images = torch.zeros(64, 1, 4, 4, dtype=torch.uint8)
    train = DeviceLoader(images, y, 16)
    test = DeviceLoader(images, y.clamp(max=3), 16)
    net = nn.Sequential(nn.Flatten(), mlp())
    before = state(net)
    with pytest.raises(ValueError, match=r'^train_ch6: epoch 1, batch 1: the labels go up to 6'):
        train_ch6(net, train, test, 1, 0.1, init=None, **quiet())
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_ignore_index_labels_are_not_out_of_range():
    train = labelled_batches(bad_at=2, bad_label=-100)
    _, test = loaders()
    h = train_ch6(mlp(), train, test, 1, 0.1, verbose=False, **quiet())
    assert h.status == 'finished'


def test_a_one_shot_generator_for_several_epochs_is_refused_up_front():
    train, test = loaders()
    net = mlp()
    before = state(net)
    with pytest.raises(ValueError, match=r'train_iter is an iterator \(generator\): it is used '
                                         r'up after one pass.*DataLoader or a list'):
        train_ch6(net, (b for b in train), test, 2, 0.1, **quiet())
    with pytest.raises(ValueError, match=r'test_iter is an iterator'):
        train_ch6(net, train, iter(list(test)), 2, 0.1, **quiet())
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    h = train_ch6(mlp(), (b for b in train), test, 1, 0.1, verbose=False, **quiet())
    assert h.epochs == 1  # one epoch needs one pass: fine


def test_a_loader_used_up_after_one_pass_is_named_in_epoch_2():
    train, test = loaders()

    class OnePass:  # re-iterable in form, but the same iterator every time
        def __init__(self):
            self.it = iter(list(train))

        def __iter__(self):
            return self.it

    with pytest.raises(ValueError, match=r'train_iter yielded no batches in epoch 2 after 4 in '
                                         r'epoch 1: it is used up after one pass') as info:
        train_ch6(mlp(), OnePass(), test, 2, 0.1, verbose=False, **quiet())
    assert info.value.history.epochs == 1


def test_host_reads_stay_a_few_per_epoch_with_the_plot(monkeypatch):
    """With the plot on, d2l's five points per epoch cost one read each, however many batches."""
    reads = []
    original = torch.Tensor.tolist

    def counted(self, *args, **kwargs):
        if sys._getframe(1).f_code.co_filename.startswith(PACKAGE):
            reads.append('tolist')
        return original(self, *args, **kwargs)
    monkeypatch.setattr(torch.Tensor, 'tolist', counted)
    counts = []
    for batch_size in (16, 4):  # 16 and 64 training batches per epoch
        train, test = loaders(batch_size=batch_size)
        reads.clear()
        train_ch6(mlp(), train, test, 2, 0.1, device='cpu', verbose=False)
        counts.append(len(reads))
    assert counts[0] == counts[1] <= 2 * 5 + 1  # 5 points per epoch, the first-batch check


# ---------------------------------------------------------------------------------------------
# progress inside an epoch

class Tty(__import__('io').StringIO):
    def isatty(self):
        return True


def test_progress_in_a_terminal_rewrites_one_line_and_clears_it():
    from my_utils.progress import Progress
    stream = Tty()
    progress = Progress(2, 10, stream=stream)
    marks = []
    for epoch in (1, 2):
        progress.start_epoch(epoch)
        marks += [i for i in range(1, 11) if progress.batch(i, 64 * i)]
        progress.end_epoch(10, 1.0)
    progress.close()
    assert marks == [2, 4, 6, 8, 10] * 2  # the fifths of an epoch
    text = stream.getvalue()
    assert '\n' not in text and text.count('\r') == 12 and text.endswith('\r')
    shown = [part.strip() for part in text.split('\r') if part.strip()]
    assert re.fullmatch(r'epoch 1/2: batch 2/10, [\d,]+ examples/s, \d+:\d\d left', shown[0])
    assert shown[-1].startswith('epoch 2/2: batch 10/10')
    assert text.split('\r')[-2].strip() == ''  # cleared at the end


def test_progress_in_a_log_file_writes_a_line_every_few_seconds_at_most(monkeypatch):
    from my_utils import progress as progress_module
    log = __import__('io').StringIO()
    progress = progress_module.Progress(1, 100, stream=log)
    progress.start_epoch(1)
    for i in range(1, 101):
        progress.batch(i, i)
    assert log.getvalue() == ''  # a fast run leaves the log alone
    clock = iter(range(0, 1000, 3))  # 3 s per batch
    monkeypatch.setattr(progress_module.time, 'perf_counter', lambda: next(clock))
    progress = progress_module.Progress(1, None, stream=log)  # a loader without len()
    progress.start_epoch(1)
    for i in range(1, 11):
        progress.batch(i, 10 * i)
    lines = log.getvalue().splitlines()
    assert 4 <= len(lines) <= 6  # 30 s, a line every 5 s at most
    assert all(re.fullmatch(r'epoch 1/1: batch \d+, [\d,]+ examples/s', line) for line in lines)


def test_progress_listeners_get_values_and_the_line_is_rendered_from_them():
    from my_utils.progress import Progress, render
    events = []
    progress = Progress(2, 10, shown=False, listeners=[events.append])
    for epoch in (1, 2):
        progress.start_epoch(epoch)
        for i in range(1, 11):
            progress.batch(i, 64 * i, *((0.5, 0.75) if progress.is_mark(i) else ()))
        done = progress.end_epoch(10, 2.0, 640, 1.5, 0.4, 0.8, 0.7)
    assert len(events) == 22 and events[-1] is done and done.done
    first = events[0]
    assert (first.epoch, first.num_epochs, first.batch, first.num_batches, first.examples) == (
        1, 2, 1, 10, 64)
    assert first.loss is None and events[1].loss == 0.5 and events[1].acc == 0.75  # a fifth
    assert (done.loss, done.acc, done.test_acc, done.epoch_seconds) == (0.4, 0.8, 0.7, 2.0)
    assert done.seconds_left == 0 and done.examples_per_sec == 640 / 1.5
    assert render(done) == 'epoch 2/2: loss 0.400, train acc 0.800, test acc 0.700 (2.0 s)'
    assert re.fullmatch(r'epoch 1/2: batch 1/10, [\d,]+ examples/s, \d+:\d\d left',
                        render(first))


def test_train_ch6_progress_goes_to_stderr_not_to_d2l_lines(monkeypatch, capsys):
    from my_utils import progress as progress_module
    monkeypatch.setattr(progress_module._LogLines, 'every', 0.0)  # a line after every batch
    train, test = loaders()
    train_ch6(mlp(), train, test, 1, 0.1, **quiet())
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3  # d2l's lines only
    assert err.splitlines()[0].startswith('epoch 1/1: batch 1/4, ')
    assert err.splitlines()[-1].startswith('epoch 1/1: batch 4/4, ')


KERNEL_CELL = '''
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
import my_utils as mu
torch.manual_seed(0)
X = torch.randn(1000, 8)
y = (X[:, 0] > 0).long()
train = DataLoader(TensorDataset(X, y), batch_size=10)  # 100 batches
test = DataLoader(TensorDataset(X[:100], y[:100]), batch_size=50)
mu.train_ch6(nn.Sequential(nn.Linear(8, 2)), train, test, 1, 0.1, 'cpu')
'''


def test_in_a_kernel_the_progress_and_the_plot_update_in_place():
    """One epoch of 100 batches in a real kernel: at least 5 in-place updates of each display;
    the cell ends with d2l's lines and a short Out line, and the progress display is empty
    both first (what nbval keeps) and last (what nbclient keeps)."""
    manager = pytest.importorskip('jupyter_client.manager')
    pytest.importorskip('ipykernel')
    env = dict(os.environ, PYTHONPATH=os.path.dirname(PACKAGE), PYTHONWARNINGS='ignore')
    km, kc = manager.start_new_kernel(kernel_name='python3', env=env, startup_timeout=120)
    try:
        msg_id = kc.execute(KERNEL_CELL)
        kinds, shown, updates, stdout, result = {}, {}, {}, '', None
        while True:
            msg = kc.get_iopub_msg(timeout=300)
            if msg['parent_header'].get('msg_id') != msg_id:
                continue
            kind, content = msg['msg_type'], msg['content']
            if kind == 'status' and content['execution_state'] == 'idle':
                break
            if kind == 'error':
                pytest.fail('\n'.join(content['traceback']))
            if kind in ('display_data', 'update_display_data'):
                display_id = content['transient']['display_id']
                what = 'plot' if 'image/png' in content['data'] else 'progress'
                kinds[display_id] = what
                if kind == 'display_data':
                    shown[what] = content['data']
                else:
                    updates.setdefault(what, []).append(content['data'])
            elif kind == 'stream' and content['name'] == 'stdout':
                stdout += content['text']
            elif kind == 'execute_result':
                result = content['data']['text/plain']
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert sorted(kinds.values()) == ['plot', 'progress']  # one display each
    assert len(updates['progress']) >= 5 and len(updates['plot']) >= 5
    assert shown['progress'] == {'text/plain': ''} == updates['progress'][-1]
    assert any('batch 100/100' in u['text/plain'] for u in updates['progress'])
    lines = stdout.splitlines()
    assert lines[0] == 'training on cpu' and FINAL_LOSS.match(lines[1])
    assert SPEED.match(lines[2]) and len(lines) == 3
    assert result == 'History(finished, 1 epoch)'
