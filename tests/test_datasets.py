"""datasets.py: data root, real Fashion-MNIST facts, fake KMNIST / CIFAR-10, options, clear errors."""
import gzip
import os
import pickle
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from my_utils import datasets as D
from my_utils.datasets import (DataError, data_root, get_cifar10_labels, get_fashion_mnist_labels,
                           get_kmnist_labels, load_data_cifar10, load_data_fashion_mnist,
                           load_data_kmnist)
from my_utils.fastdata import DeviceLoader
from my_utils.synthetic import SYNTHETIC_MARKER, write_fake_cifar10, write_fake_kmnist

REAL = os.environ.get('MY_UTILS_DATA')
needs_real = pytest.mark.skipif(
    not REAL or not (Path(REAL) / 'FashionMNIST' / 'raw' / 'train-images-idx3-ubyte').is_file(),
    reason='real Fashion-MNIST not available: set MY_UTILS_DATA to the folder holding '
           'FashionMNIST/raw/ (here: MY_UTILS_DATA=/work/shared/data)')


@pytest.fixture(scope='module')
def fake(tmp_path_factory):
    """One folder with small fake KMNIST and CIFAR-10 sets."""
    root = tmp_path_factory.mktemp('fake')
    assert write_fake_kmnist(root, n_train=300, n_test=100) == root
    assert write_fake_cifar10(root, n_train=250, n_test=100) == root
    return root


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv('MY_UTILS_DATA', str(tmp_path / 'env'))
    assert data_root(tmp_path / 'arg') == tmp_path / 'arg'
    assert data_root() == tmp_path / 'env'
    monkeypatch.delenv('MY_UTILS_DATA')
    assert data_root() == Path('~/.cache/my_utils/data').expanduser()


def test_label_helpers():
    assert get_fashion_mnist_labels([0, 9]) == ['t-shirt', 'ankle boot']
    assert get_fashion_mnist_labels(torch.tensor([3])) == ['dress']
    assert get_kmnist_labels(torch.tensor([0, 1, 9])) == ['o', 'ki', 'wo']
    assert get_cifar10_labels([0, 1, 9]) == ['airplane', 'automobile', 'truck']


# ---- the real Fashion-MNIST --------------------------------------------------------

@needs_real
def test_real_fashion_mnist_facts():
    train, test = load_data_fashion_mnist(256, device='cpu', shuffle=False)
    assert len(train.dataset) == 60000 and len(test.dataset) == 10000
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert train.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert test.labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    # Exact pixel statistics from the histogram of the uint8 values.
    counts = torch.bincount(train.images.flatten(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255
    mean = (counts * values).sum() / counts.sum()
    std = ((counts * (values - mean) ** 2).sum() / counts.sum()).sqrt()
    assert round(mean.item(), 4) == 0.2860 and round(std.item(), 4) == 0.3530


@needs_real
def test_real_classic_loader_is_d2l_compatible():
    train, test = load_data_fashion_mnist(256, None, num_workers=0, n_test=600)
    assert isinstance(train, torch.utils.data.DataLoader) and len(train.dataset) == 60000
    assert len(test.dataset) == 600 and len(test) == 3
    X, y = next(iter(train))
    assert X.shape == (256, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert 0 <= X.min() and X.max() <= 1
    assert y[:10].tolist() != [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]  # the training split is shuffled
    Xt, yt = next(iter(test))
    assert yt[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]  # the test split is not
    X64, _ = next(iter(load_data_fashion_mnist(32, resize=64, num_workers=0, n_test=32)[1]))
    assert X64.shape == (32, 1, 64, 64)


@needs_real
def test_real_default_workers():
    pytest.importorskip('my_utils.devices', reason='my_utils/devices.py (the lead\'s) not written yet')
    from my_utils.devices import get_dataloader_workers
    train, test = load_data_fashion_mnist(64, n_train=128, n_test=64)
    assert train.num_workers == test.num_workers == get_dataloader_workers()
    assert sum(len(y) for _, y in train) == 128


@needs_real
def test_real_normalize():
    _, test = load_data_fashion_mnist(500, device='cpu', normalize=True, n_train=10, n_test=500)
    X, _ = next(iter(test))
    assert torch.allclose(X, (test.images.float() / 255 - 0.2860) / 0.3530)  # the stats checked above


# ---- fake KMNIST and CIFAR-10: both paths --------------------------------------------

@pytest.mark.parametrize('device', [None, 'cpu'])
def test_fake_kmnist(fake, device):
    train, test = load_data_kmnist(64, root=fake, device=device, num_workers=0)
    assert len(train.dataset) == 300 and len(test.dataset) == 100 and len(test) == 2
    X, y = next(iter(train))
    assert X.shape == (64, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    ys = torch.cat([y for _, y in test])
    assert torch.bincount(ys).tolist() == [10] * 10  # balanced labels, as written
    assert len(get_kmnist_labels(ys)) == 100
    assert (fake / 'KMNIST' / SYNTHETIC_MARKER).is_file()


@pytest.mark.parametrize('device', [None, 'cpu'])
def test_fake_cifar10(fake, device):
    train, test = load_data_cifar10(50, root=fake, device=device, num_workers=0)
    assert len(train.dataset) == 250 and len(test.dataset) == 100 and len(train) == 5
    X, y = next(iter(train))
    assert X.shape == (50, 3, 32, 32) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert 0 <= int(y.min()) and int(y.max()) <= 9
    if device is None:
        assert train.dataset.classes == get_cifar10_labels(range(10))
    X, _ = next(iter(load_data_cifar10(50, 48, root=fake, device=device, num_workers=0)[1]))
    assert X.shape == (50, 3, 48, 48)


@pytest.mark.parametrize('device', [None, 'cpu'])
def test_n_train_n_test(fake, device):
    train, test = load_data_kmnist(32, root=fake, device=device, n_train=70, n_test=1000,
                                   num_workers=0)
    assert len(train.dataset) == 70 and sum(len(y) for _, y in train) == 70
    assert len(test.dataset) == 100  # n larger than the split: the whole split


@pytest.mark.parametrize('device', [None, 'cpu'])
def test_augment_train_split_only(fake, device):
    seen = []

    def spy(x):
        seen.append(tuple(x.shape))
        return x.flip(-1)
    kw = dict(root=fake, device=device, num_workers=0, shuffle=False, n_train=50, n_test=50)
    plain_train, plain_test = load_data_cifar10(50, **kw)
    train, test = load_data_cifar10(50, augment=spy, **kw)
    assert torch.equal(next(iter(train))[0], next(iter(plain_train))[0].flip(-1))
    assert seen[0] == ((3, 32, 32) if device is None else (50, 3, 32, 32))  # per sample / per batch
    n = len(seen)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(test, plain_test)) and len(seen) == n
    X, _ = next(iter(load_data_cifar10(50, augment=True, **kw)[0]))  # the default augmentation
    assert X.shape == (50, 3, 32, 32)
    X, _ = next(iter(load_data_kmnist(50, 40, augment=True, **kw)[0]))
    assert X.shape == (50, 1, 40, 40)


def test_normalize_per_channel(fake):
    kw = dict(root=fake, device='cpu', shuffle=False)
    X0, _ = next(iter(load_data_cifar10(250, **kw)[0]))
    X1, _ = next(iter(load_data_cifar10(250, normalize=True, **kw)[0]))
    mean, std = torch.tensor(D._CIFAR.mean).view(3, 1, 1), torch.tensor(D._CIFAR.std).view(3, 1, 1)
    assert torch.allclose(X1, (X0 - mean) / std)
    X2, _ = next(iter(load_data_kmnist(300, normalize=(0.5, 0.25), **kw)[0]))
    X3, _ = next(iter(load_data_kmnist(300, **kw)[0]))
    assert torch.allclose(X2, (X3 - 0.5) / 0.25)


def test_gz_files_placed_by_hand_are_unpacked(tmp_path):
    raw = write_fake_kmnist(tmp_path, 40, 20) / 'KMNIST' / 'raw'
    for f in list(raw.iterdir()):
        (raw / (f.name + '.gz')).write_bytes(gzip.compress(f.read_bytes()))
        f.unlink()
    train, _ = load_data_kmnist(8, root=tmp_path, device='cpu', download=False)
    assert len(train.dataset) == 40


# ---- clear errors ------------------------------------------------------------------

def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError('no network (simulated by the test)')
    monkeypatch.setattr(urllib.request, 'urlopen', refuse)


def _clean(err):
    """The DataError is raised without a chained torch/torchvision stack trace."""
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)


@pytest.mark.parametrize('load, folder, files', [
    (load_data_fashion_mnist, 'FashionMNIST/raw', ['train-images-idx3-ubyte', 't10k-labels-idx1-ubyte']),
    (load_data_kmnist, 'KMNIST/raw', ['train-images-idx3-ubyte', 't10k-labels-idx1-ubyte']),
    (load_data_cifar10, 'cifar-10-batches-py', ['data_batch_1', 'test_batch', 'batches.meta']),
])
def test_missing_files_without_network(monkeypatch, tmp_path, load, folder, files):
    _no_network(monkeypatch)
    with pytest.raises(DataError) as info:
        load(64, root=tmp_path, num_workers=0)
    msg = str(info.value)
    assert str(tmp_path / folder) in msg and 'missing' in msg
    assert all(f in msg for f in files) and 'MY_UTILS_DATA' in msg
    assert 'downloading failed (no network?' in msg and 'simulated by the test' in msg
    _clean(info.value)
    # The same facts as fields, for a program (a lesson's stand-in, a check script) to read.
    err = info.value
    assert err.dataset in msg and err.folder == tmp_path / folder
    assert set(files) <= set(err.missing) and err.problems == {}
    again = pickle.loads(pickle.dumps(err))
    assert (str(again), again.dataset, again.folder, again.missing) == (msg, err.dataset,
                                                                         err.folder, err.missing)
    with pytest.raises(DataError, match=r'nothing was downloaded \(download=False\)'):
        load(64, root=tmp_path, download=False, device='cpu')


def test_truncated_idx_file(tmp_path):
    raw = write_fake_kmnist(tmp_path, 40, 20) / 'KMNIST' / 'raw'
    path = raw / 'train-images-idx3-ubyte'
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError) as info:
        load_data_kmnist(8, root=tmp_path, device='cpu')
    msg = str(info.value)
    assert ('train-images-idx3-ubyte is truncated or damaged: its header says 40x28x28 = 31,376 '
            'bytes, the file has 5,000') in msg
    assert str(raw) in msg and 'MY_UTILS_DATA' in msg
    _clean(info.value)


def test_label_count_mismatch_and_bad_labels(tmp_path):
    raw = write_fake_kmnist(tmp_path, 40, 20) / 'KMNIST' / 'raw'
    path = raw / 't10k-labels-idx1-ubyte'
    b = path.read_bytes()
    path.write_bytes(b[:4] + (19).to_bytes(4, 'big') + b[8:-1])
    with pytest.raises(DataError, match='t10k-labels-idx1-ubyte holds 19 labels for 20 images') as info:
        load_data_kmnist(8, root=tmp_path)
    assert info.value.problems == {'t10k-labels-idx1-ubyte': 'holds 19 labels for 20 images'}
    assert info.value.missing == () and info.value.folder == raw
    path.write_bytes(b[:8] + bytes([42]) + b[9:])
    with pytest.raises(DataError, match=r'labels must be 0..9'):
        load_data_kmnist(8, root=tmp_path)


def test_cifar_md5_failure(monkeypatch, tmp_path):
    _no_network(monkeypatch)
    folder = write_fake_cifar10(tmp_path, 20, 10) / 'cifar-10-batches-py'
    (folder / SYNTHETIC_MARKER).unlink()  # now they are just files that are not the real ones
    with pytest.raises(DataError) as info:
        load_data_cifar10(8, root=tmp_path, num_workers=0)
    msg = str(info.value)
    assert 'data_batch_1' in msg and 'failed the md5 check' in msg and str(folder) in msg
    assert 'delete the damaged files' in msg and 'MY_UTILS_DATA' in msg
    _clean(info.value)


def test_broken_synthetic_cifar_batch(tmp_path):
    folder = write_fake_cifar10(tmp_path, 20, 10) / 'cifar-10-batches-py'
    (folder / 'data_batch_3').write_bytes(b'\x80\x02')
    with pytest.raises(DataError) as info:
        load_data_cifar10(8, root=tmp_path, download=False)
    msg = str(info.value)
    # The damaged batch is named, with what reading it raised.
    assert 'data_batch_3 could not be read (EOFError: Ran out of input)' in msg
    assert 'data_batch_1' not in msg.split('Expected files')[0]  # the good batches are not blamed
    assert 'synthetic set' in msg and 'write it again' in msg
    _clean(info.value)


# ---- the student's mistakes: each one clear DataError, before anything is read -----------

def test_root_that_is_a_file(tmp_path):
    path = tmp_path / 'data.zip'
    path.write_bytes(b'PK')
    with pytest.raises(DataError) as info:
        load_data_fashion_mnist(64, root=path)
    msg = str(info.value)
    assert f'The data folder {path} is a file, not a folder' in msg and 'missing' not in msg
    assert 'holds FashionMNIST/raw/' in msg
    _clean(info.value)
    assert path.read_bytes() == b'PK'  # untouched (download=True did not try to write there)


def test_file_where_the_raw_folder_should_be(tmp_path):
    (tmp_path / 'KMNIST').mkdir()
    (tmp_path / 'KMNIST' / 'raw').write_text('')
    with pytest.raises(DataError, match=r'KMNIST/raw is a file, not a folder: KMNIST expects the folder'):
        load_data_kmnist(64, root=tmp_path)


def _deny(monkeypatch, path):
    """Pretend ``path`` cannot be read. Tests here run as root, who reads everything, so a chmod
    would prove nothing; os.access is what the loader asks."""
    real = os.access
    monkeypatch.setattr(D.os, 'access', lambda p, mode: False if Path(p) == path else real(p, mode))


@pytest.mark.parametrize('what', ['file', 'folder'])
def test_unreadable_file_or_raw_folder(monkeypatch, tmp_path, what):
    raw = write_fake_kmnist(tmp_path, 40, 20) / 'KMNIST' / 'raw'
    path = raw / 't10k-images-idx3-ubyte' if what == 'file' else raw
    _deny(monkeypatch, path)
    with pytest.raises(DataError) as info:
        load_data_kmnist(8, root=tmp_path, device='cpu')
    msg = str(info.value)
    assert f'{path} cannot be read (permission denied)' in msg and 'chmod' in msg
    _clean(info.value)


@pytest.mark.skipif(os.name != 'posix' or os.geteuid() == 0, reason='root reads every file')
def test_unreadable_file_for_real(tmp_path):
    raw = write_fake_kmnist(tmp_path, 40, 20) / 'KMNIST' / 'raw'
    (raw / 'train-labels-idx1-ubyte').chmod(0)
    with pytest.raises(DataError, match='train-labels-idx1-ubyte cannot be read'):
        load_data_kmnist(8, root=tmp_path)


def test_permission_error_while_reading_is_a_data_error(monkeypatch, tmp_path):
    write_fake_kmnist(tmp_path, 40, 20)

    def refuse(path, n):
        raise PermissionError(13, 'Permission denied', str(path))
    monkeypatch.setattr(D, '_head', refuse)  # e.g. an ACL that os.access did not see
    with pytest.raises(DataError, match=r'cannot be read \(permission denied\)') as info:
        load_data_kmnist(8, root=tmp_path)
    _clean(info.value)


def test_zero_byte_files(tmp_path):
    raw = write_fake_kmnist(tmp_path, 40, 20) / 'KMNIST' / 'raw'
    (raw / 'train-labels-idx1-ubyte').write_bytes(b'')
    with pytest.raises(DataError) as info:
        load_data_kmnist(8, root=tmp_path)
    msg = str(info.value)
    assert 'train-labels-idx1-ubyte is empty (0 bytes: an interrupted download or copy)' in msg
    assert 'magic' not in msg
    folder = write_fake_cifar10(tmp_path, 20, 10) / 'cifar-10-batches-py'
    (folder / 'test_batch').write_bytes(b'')
    with pytest.raises(DataError, match='test_batch is empty') as info:
        load_data_cifar10(8, root=tmp_path, download=False)
    assert 'Ran out of input' not in str(info.value)


def test_zero_byte_gz_file(tmp_path):
    raw = write_fake_kmnist(tmp_path, 40, 20) / 'KMNIST' / 'raw'
    (raw / 'train-images-idx3-ubyte').unlink()
    (raw / 'train-images-idx3-ubyte.gz').write_bytes(b'')
    with pytest.raises(DataError, match=r'train-images-idx3-ubyte.gz is empty'):
        load_data_kmnist(8, root=tmp_path)
    assert not (raw / 'train-images-idx3-ubyte').exists()  # no empty file left behind


def _open_files_under(folder):
    names = []
    for fd in os.listdir('/proc/self/fd'):
        try:
            names.append(os.readlink(f'/proc/self/fd/{fd}'))
        except OSError:  # the descriptor listdir itself used, closed by now
            pass
    return [n for n in names if n.startswith(str(folder))]


def _resource_warnings(fn):
    import gc
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', ResourceWarning)
        result = fn()
        gc.collect()  # a file left open warns when it is collected at the latest
    return result, [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize('load', [load_data_kmnist, load_data_cifar10])
@pytest.mark.parametrize('device', [None, 'cpu'])
def test_loading_leaves_no_file_open(fake, load, device):
    (train, _), warned = _resource_warnings(lambda: load(64, root=fake, device=device, num_workers=0))
    assert warned == []
    next(iter(train))
    if os.path.isdir('/proc/self/fd'):
        assert _open_files_under(fake) == []


@needs_real
def test_real_fashion_mnist_leaves_no_file_open():
    _, warned = _resource_warnings(lambda: load_data_fashion_mnist(256, num_workers=0))
    assert warned == []  # there were eight: each split's check read the headers without closing them
    if os.path.isdir('/proc/self/fd'):
        assert _open_files_under(REAL) == []


def test_a_failed_download_leaves_no_empty_folders(tmp_path, monkeypatch):
    import torchvision

    def no_network(*args, **kwargs):
        raise OSError('no network')

    monkeypatch.setattr(torchvision.datasets.utils, 'download_and_extract_archive', no_network)
    monkeypatch.setattr(torchvision.datasets.mnist, 'download_and_extract_archive', no_network)
    from my_utils.datasets import load_data_kmnist
    with pytest.raises(DataError):
        load_data_kmnist(32, root=tmp_path)
    assert list(tmp_path.iterdir()) == []
