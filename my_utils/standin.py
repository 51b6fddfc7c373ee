"""Real data when it can be had, a labelled stand-in when it cannot.

`load_data_or_standin('kmnist', 128)` returns (train_iter, test_iter, source). The real files are
used when they are on disk; when they are absent, they are downloaded if the network answers
within a second or two; only when neither works is a small synthetic set of the same format
written (my_utils.synthetic) and loaded instead. `source` says which of the three happened, and
one line saying so is printed. Nothing waits on a network that is not there: the check is a
bounded DNS lookup and TCP connect, and MY_UTILS_OFFLINE=1 skips it altogether.
"""
import os
import socket
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torchvision

from . import datasets, synthetic

__all__ = ['DataSource', 'LoadedData', 'load_data_or_standin', 'network_available', 'is_offline']

OFFLINE_ENV = 'MY_UTILS_OFFLINE'
NETWORK_TIMEOUT = 2.0  # seconds for the whole check (lookup and connect)


@dataclass(frozen=True)
class _Set:
    title: str
    loader: Any  # the my_utils loader
    folder: str  # relative to the data root
    files: tuple
    url: str  # where the files are downloaded from (its host is what the check asks)
    write_fake: Any  # (root, n_train, n_test, seed) -> root holding the stand-in
    standin_size: tuple  # default (n_train, n_test) of the stand-in


_IDX = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
        't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')


def _fake_fashion_mnist(root, n_train, n_test, seed):
    # Fashion-MNIST and KMNIST share the idx format: write KMNIST's stand-in, then rename it.
    root = Path(root)
    synthetic.write_fake_kmnist(root / 'tmp', n_train, n_test, seed)
    (root / 'tmp' / 'KMNIST').rename(root / 'FashionMNIST')
    (root / 'tmp').rmdir()
    (root / 'FashionMNIST' / synthetic.SYNTHETIC_MARKER).write_text(
        'Fashion-MNIST in this folder is synthetic (stroke patterns written by my_utils.standin); '
        'it is not the real data set.\n')
    return root


_SETS = {
    'fashion_mnist': _Set('Fashion-MNIST', datasets.load_data_fashion_mnist, 'FashionMNIST/raw',
                          _IDX, torchvision.datasets.FashionMNIST.mirrors[0],
                          _fake_fashion_mnist, (2000, 500)),
    'kmnist': _Set('KMNIST', datasets.load_data_kmnist, 'KMNIST/raw', _IDX,
                   torchvision.datasets.KMNIST.mirrors[0],
                   lambda root, n, m, seed: synthetic.write_fake_kmnist(root, n, m, seed),
                   (2000, 500)),
    'cifar10': _Set('CIFAR-10', datasets.load_data_cifar10, 'cifar-10-batches-py',
                    tuple(f'data_batch_{i}' for i in range(1, 6)) + ('test_batch', 'batches.meta'),
                    torchvision.datasets.CIFAR10.url,
                    lambda root, n, m, seed: synthetic.write_fake_cifar10(root, n, m, seed),
                    (1000, 500)),
}


@dataclass(frozen=True)
class DataSource:
    """Which data a loader returned: `standin` is True for synthetic data (its accuracies mean
    nothing); `how` is 'on disk', 'downloaded' or 'stand-in'; `reason` says why a stand-in."""
    title: str
    how: str
    root: Path
    reason: str = ''

    @property
    def standin(self):
        return self.how == 'stand-in'

    def __str__(self):
        # No folder in the line: a notebook's output must not depend on where the data sit.
        if not self.standin:
            return f'data: {self.title}, the real set ({self.how})'
        return (f'data: STAND-IN for {self.title}, synthetic images ({self.reason}); '
                f'accuracies on it say nothing about {self.title}')


class LoadedData(NamedTuple):
    """What `load_data_or_standin` returns: d2l's (train_iter, test_iter) and the source."""
    train_iter: Any
    test_iter: Any
    source: DataSource


def is_offline():
    """True when the environment variable MY_UTILS_OFFLINE is set to 1/true/yes/on."""
    return os.environ.get(OFFLINE_ENV, '').strip().lower() in ('1', 'true', 'yes', 'on')


def network_available(url, timeout=NETWORK_TIMEOUT):
    """Whether `url`'s host answers a TCP connect within `timeout` seconds (lookup included).

    The lookup runs in a daemon thread, because a DNS lookup cannot be given a timeout of its
    own: a resolver that hangs is left behind instead of being waited for."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        raise ValueError(f'network_available needs a URL with a host name, got {url!r}')
    port = parts.port or (443 if parts.scheme == 'https' else 80)
    answered = threading.Event()

    def connect():
        try:
            with socket.create_connection((parts.hostname, port), timeout=timeout):
                answered.set()
        except OSError:
            pass

    threading.Thread(target=connect, daemon=True).start()
    return answered.wait(timeout)


def _absent(spec, root):
    """True when none of the set's files (or their .gz copies) is in its folder."""
    folder = root / spec.folder
    return not any((folder / name).exists() or (folder / (name + '.gz')).exists()
                   for name in spec.files)


def _no_download_reason(spec):
    """Why the absent files cannot be downloaded now, or None when they can be tried."""
    if is_offline():
        return f'the real files are absent and {OFFLINE_ENV}=1 forbids downloading'
    if not network_available(spec.url):
        host = urllib.parse.urlsplit(spec.url).hostname
        return f'the real files are absent and {host} did not answer within {NETWORK_TIMEOUT:g} s'
    return None


def _standin_root(key, n_train, n_test, seed):
    """One folder per stand-in, written once and reused (the writer is deterministic)."""
    base = Path(tempfile.gettempdir()) / 'my_utils_standin'
    root = base / f'{key}_{n_train}_{n_test}_seed{seed}'
    if not root.is_dir():
        base.mkdir(parents=True, exist_ok=True)
        part = Path(tempfile.mkdtemp(prefix=root.name + '.', dir=base))
        _SETS[key].write_fake(part, n_train, n_test, seed)
        try:  # written aside and renamed: another process never sees a half-written set
            part.rename(root)
        except OSError:  # another process finished first: its copy is as good
            pass
    return root


def _check_size(size, name):
    ok = (isinstance(size, (tuple, list)) and len(size) == 2
          and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in size))
    if not ok:
        raise ValueError(f'{name} must be (n_train, n_test), two positive ints; got {size!r}')
    return tuple(size)


def load_data_or_standin(name, batch_size, resize=None, *, standin_size=None, standin_seed=0,
                         verbose=True, **loader_args):
    """Load `name` ('fashion_mnist', 'kmnist' or 'cifar10') with my_utils' loader; returns
    LoadedData(train_iter, test_iter, source) and prints `source` when verbose.

    The real files are used when they are on disk (root=, MY_UTILS_DATA or the default folder).
    When they are absent and the network answers (never asked with MY_UTILS_OFFLINE=1), the
    loader downloads them. Otherwise a stand-in of `standin_size` = (n_train, n_test) synthetic
    images is written under the temporary folder and loaded with the same arguments. Files that
    are present but damaged raise the loader's DataError: a stand-in never hides them.
    `loader_args` (root, device, augment, normalize, n_train, n_test, ...) go to the loader;
    `download` is decided here.
    """
    key = str(name).lower().replace('-', '_')
    if key not in _SETS:
        raise ValueError(f'unknown data set {name!r}; use one of {", ".join(_SETS)}')
    spec = _SETS[key]
    if 'download' in loader_args:
        raise TypeError('load_data_or_standin decides download itself; call '
                        f'mu.{spec.loader.__name__} to choose it')
    size = _check_size(spec.standin_size if standin_size is None else standin_size, 'standin_size')
    if not isinstance(standin_seed, int) or isinstance(standin_seed, bool) or standin_seed < 0:
        raise ValueError(f'standin_seed must be an int >= 0, got {standin_seed!r}')
    root = datasets.data_root(loader_args.pop('root', None))
    # With download=False the loader checks every argument, then reads what is on disk.
    try:
        train_iter, test_iter = spec.loader(batch_size, resize, root=root, download=False,
                                            **loader_args)
        source = DataSource(spec.title, 'on disk', root / spec.folder)
    except datasets.DataError:
        if not _absent(spec, root):
            raise  # damaged or partial files: the loader's message says how to fix them
        reason = _no_download_reason(spec)
        if reason is None:
            try:
                train_iter, test_iter = spec.loader(batch_size, resize, root=root, download=True,
                                                    **loader_args)
                source = DataSource(spec.title, 'downloaded', root / spec.folder)
            except datasets.DataError as err:
                if not _absent(spec, root):
                    raise  # a download that stopped half-way: the message says what to do
                first_line = str(err).splitlines()[0]
                reason = f'the real files are absent and downloading failed: {first_line}'
        if reason is not None:
            fake = _standin_root(key, *size, standin_seed)
            train_iter, test_iter = spec.loader(batch_size, resize, root=fake, download=False,
                                                **loader_args)
            source = DataSource(spec.title, 'stand-in', fake / spec.folder, reason)
    if verbose:
        print(source)
    return LoadedData(train_iter, test_iter, source)
