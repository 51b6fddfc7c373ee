"""DeviceLoader: DataLoader-like behaviour, shuffling, the batch pipeline, equality with the classic path."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from my_utils.augment import RandomHorizontalFlip
from my_utils.datasets import load_data_cifar10, load_data_fashion_mnist, load_data_kmnist
from my_utils.fastdata import DeviceLoader
from my_utils.synthetic import write_fake_cifar10, write_fake_kmnist

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
REAL = os.environ.get('MY_UTILS_DATA')
needs_real = pytest.mark.skipif(
    not REAL or not (Path(REAL) / 'FashionMNIST' / 'raw' / 'train-images-idx3-ubyte').is_file(),
    reason='real Fashion-MNIST not available: set MY_UTILS_DATA to the folder holding '
           'FashionMNIST/raw/ (here: MY_UTILS_DATA=/work/shared/data)')


def _indexed(n=300, h=6, w=5):
    """uint8 images whose first pixel is their index, labels = index % 10."""
    images = torch.zeros(n, h, w, dtype=torch.uint8)
    images[:, 0, 0] = torch.arange(n) % 256
    images[:, 0, 1] = torch.arange(n) // 256
    return images, torch.arange(n) % 10


def _ids(X):
    """Recover each sample's index from its first two pixels."""
    return (X[:, 0, 0, 0] * 255).round().long() + 256 * (X[:, 0, 0, 1] * 255).round().long()


@pytest.mark.parametrize('device', DEVICES)
def test_behaves_like_a_dataloader(device):
    images, labels = _indexed(300)
    it = DeviceLoader(images, labels, 64, device=device)
    assert len(it) == 5 and it.batch_size == 64 and len(it.dataset) == 300
    assert it.device == torch.device(device) and it.images.dtype == torch.uint8
    batches = list(it)
    assert [len(y) for _, y in batches] == [64, 64, 64, 64, 44]
    X, y = batches[0]
    assert X.shape == (64, 1, 6, 5) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert X.device.type == torch.device(device).type
    assert torch.equal(X, images[:64, None].to(device).float() / 255)
    assert torch.equal(_ids(torch.cat([X for X, _ in batches])).cpu(), torch.arange(300))
    dropped = DeviceLoader(images, labels, 64, drop_last=True)
    assert len(dropped) == 4 and sum(len(y) for _, y in dropped) == 256


@pytest.mark.parametrize('device', DEVICES)
def test_shuffle_each_example_once_and_new_order_each_epoch(device):
    images, labels = _indexed(1000)
    it = DeviceLoader(images, labels, 128, shuffle=True, device=device)
    orders = []
    for _ in range(3):
        batches = list(it)
        ids = _ids(torch.cat([X for X, _ in batches])).cpu()
        ys = torch.cat([y for _, y in batches]).cpu()
        assert torch.equal(ids.sort().values, torch.arange(1000))  # each example exactly once
        assert torch.equal(ys, ids % 10)  # labels travel with their images
        orders.append(ids)
    assert not torch.equal(orders[0], orders[1]) and not torch.equal(orders[1], orders[2])
    a = [_ids(X) for X, _ in DeviceLoader(images, labels, 100, shuffle=True, seed=3)]
    b = [_ids(X) for X, _ in DeviceLoader(images, labels, 100, shuffle=True, seed=3)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))  # seed= makes the order repeatable


def test_layouts_resize_normalize_augment():
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)  # CIFAR-style numpy
    a = DeviceLoader(nhwc, list(range(20)), 10)
    b = DeviceLoader(torch.from_numpy(nhwc).permute(0, 3, 1, 2), torch.arange(20), 10)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, b))
    assert next(iter(a))[0].shape == (10, 3, 8, 8)
    X = next(iter(DeviceLoader(nhwc, np.arange(20), 10, resize=(16, 12))))[0]
    assert X.shape == (10, 3, 16, 12)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    Xn = next(iter(DeviceLoader(nhwc, np.arange(20), 10, normalize=(mean, std))))[0]
    X0 = next(iter(a))[0]
    want = (X0 - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    assert torch.allclose(Xn, want)
    seen = []
    spy = lambda x: seen.append(x.shape) or x.flip(-1)  # noqa: E731
    Xa = next(iter(DeviceLoader(nhwc, np.arange(20), 10, augment=spy)))[0]
    assert seen == [(10, 3, 8, 8)] and torch.equal(Xa, X0.flip(-1))  # called once per batch


@pytest.mark.parametrize('kwargs, error, message', [
    (dict(batch_size=0), ValueError, 'batch_size must be a positive integer'),
    (dict(images=torch.rand(4, 1, 3, 3)), TypeError, 'images must be uint8'),
    (dict(labels=torch.zeros(3)), ValueError, 'one label per image'),
    (dict(images=torch.zeros(4, 8, 8, 8, 8, dtype=torch.uint8)), ValueError, 'images must have shape'),
    (dict(augment=True), TypeError, 'only the load_data_* functions know'),
    (dict(augment='flip'), TypeError, 'augment must be None, False, True'),
    (dict(normalize=True), ValueError, 'pass (mean, std) instead'),
    (dict(normalize=(0.5, 0.0)), ValueError, 'std > 0'),
    (dict(resize=0), ValueError, 'resize must be None, a positive int'),
    (dict(device='gpu'), ValueError, "device='gpu' cannot be used here"),
])
def test_bad_arguments(kwargs, error, message):
    args = dict(images=torch.zeros(4, 3, 3, dtype=torch.uint8), labels=torch.zeros(4), batch_size=2)
    args.update(kwargs)
    with pytest.raises(error) as info:
        DeviceLoader(args.pop('images'), args.pop('labels'), args.pop('batch_size'), **args)
    assert message in str(info.value)


def _same(a, b, exact=True):
    pairs = list(zip(a, b))
    assert len(pairs) == len(a) == len(b)
    for (xa, ya), (xb, yb) in pairs:
        assert torch.equal(ya, yb)
        assert torch.equal(xa, xb) if exact else torch.allclose(xa, xb, atol=1e-6)


@needs_real
def test_fast_equals_classic_on_real_fashion_mnist():
    kw = dict(n_train=1000, n_test=1000, shuffle=False)
    classic = load_data_fashion_mnist(256, num_workers=0, **kw)
    fast = load_data_fashion_mnist(256, device='cpu', **kw)
    for a, b in zip(classic, fast):
        _same(a, b)  # torch.equal, batch for batch, train and test


def test_fast_equals_classic_on_fake_sets(tmp_path):
    write_fake_kmnist(tmp_path, 150, 70)
    write_fake_cifar10(tmp_path, 150, 70)
    for load in (load_data_kmnist, load_data_cifar10):
        kw = dict(root=tmp_path, shuffle=False, normalize=True)
        for a, b in zip(load(32, num_workers=0, **kw), load(32, device='cpu', **kw)):
            _same(a, b)
        # Resize goes through the same function in both paths (per image vs per batch).
        kw.update(resize=(20, 36), n_train=64, n_test=64)
        for a, b in zip(load(32, num_workers=0, **kw), load(32, device='cpu', **kw)):
            _same(a, b, exact=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_cuda_matches_cpu(tmp_path):
    write_fake_cifar10(tmp_path, 150, 70)
    kw = dict(root=tmp_path, shuffle=False, normalize=True, resize=40)
    for a, b in zip(load_data_cifar10(32, device='cpu', **kw), load_data_cifar10(32, device='cuda', **kw)):
        for (xa, ya), (xb, yb) in zip(a, b):
            assert xb.is_cuda and torch.equal(ya, yb.cpu())
            assert torch.allclose(xa, xb.cpu(), atol=1e-5)
    train, _ = load_data_cifar10(32, device='cuda', augment=RandomHorizontalFlip(), root=tmp_path)
    X, y = next(iter(train))
    assert X.is_cuda and y.is_cuda and X.shape == (32, 3, 32, 32)


@needs_real
def test_training_on_the_fast_path_reaches_the_classic_accuracy():
    # Same model, seed and subset; only the data path (and so the shuffle order) differs. An MLP
    # on 6,000 real images reaches about 0.80 in 5 epochs; the test accuracy of single epochs
    # moves by +-0.03 with the order, so the best epoch of each run is compared.
    from torch import nn
    from my_utils.train6 import train_ch6
    from my_utils.utils import set_seed
    kw = dict(n_train=6000, n_test=2000)
    best = {}
    for name, extra in (('classic', dict(num_workers=0)), ('fast', dict(device='cpu'))):
        set_seed(0)
        train, test = load_data_fashion_mnist(64, **kw, **extra)
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
        h = train_ch6(net, train, test, 5, 0.1, device='cpu', animate=False, verbose=False)
        best[name] = h.best_test_acc
    assert best['classic'] > 0.77 and best['fast'] > 0.77, best
    assert abs(best['fast'] - best['classic']) < 0.03, best
