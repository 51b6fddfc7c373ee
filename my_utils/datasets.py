"""Fashion-MNIST, KMNIST and CIFAR-10 as d2l-style (train_iter, test_iter) pairs.

torchvision's dataset classes read (and, with network, download) the files under
``data_root()``.  ``device=None`` gives classic DataLoaders (PIL -> ToTensor per sample in
worker processes); ``device='cuda'`` etc. gives DeviceLoaders that keep the split as
uint8 on the device.  Both apply the same steps in the same order -- /255, resize,
augment (training split only), normalize -- so with shuffle off they yield equal tensors.

Default augmentation (``augment=True``): Fashion-MNIST RandomTranslate(0.1) +
RandomHorizontalFlip(); KMNIST RandomTranslate(0.1) (characters are not mirror
symmetric); CIFAR-10 RandomCrop(size, padding=size/8, i.e. 4 at 32) + RandomHorizontalFlip().

Synthetic CIFAR-10 folders (see my_utils.synthetic) carry a ``MY_UTILS_SYNTHETIC``
marker file; only there is torchvision's md5 check replaced by an existence check.
"""
import gzip
import math
import numbers
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
import torchvision
from torchvision.transforms import functional as TVF

from .arguments import is_int
from . import augment as aug
from .fastdata import (DeviceLoader, check_augment, check_batch_size, check_resize,
                       finish_images, normalize_stats)
from .synthetic import CIFAR10_CLASSES, SYNTHETIC_MARKER

__all__ = ['DataError', 'data_root', 'load_data_fashion_mnist', 'load_data_kmnist',
           'load_data_cifar10', 'get_fashion_mnist_labels', 'get_kmnist_labels',
           'get_cifar10_labels']

DEFAULT_DATA_ROOT = '~/.cache/my_utils/data'
FASHION_MNIST_CLASSES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat',
                         'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot']  # d2l's names
KMNIST_CLASSES = ['o', 'ki', 'su', 'tsu', 'na', 'ha', 'ma', 'ya', 're', 'wo']  # romanized kana


class DataError(RuntimeError):
    """A data set is missing or corrupt; the message says where and how to fix it.

    Its fields say the same for a program: `dataset` (e.g. 'Fashion-MNIST', or the DATA_HUB
    name of a file), `folder` (the Path where the files belong, or None), `missing` (a tuple of
    the file names expected there and absent) and `problems` ({file name: what is wrong with
    it} for files that are there but unusable).
    """

    def __init__(self, message, *, dataset=None, folder=None, missing=(), problems=None):
        super().__init__(message)
        self.dataset = dataset
        self.folder = None if folder is None else Path(folder)
        self.missing = tuple(missing)
        self.problems = dict(problems or {})

    def __reduce__(self):  # pickling keeps the fields (the default would pass them as args)
        return type(self), (str(self),), self.__dict__


def data_root(root=None):
    """``root`` if given, else env ``MY_UTILS_DATA``, else ``~/.cache/my_utils/data``."""
    if root is None:
        root = os.environ.get('MY_UTILS_DATA') or DEFAULT_DATA_ROOT
    return Path(root).expanduser().absolute()


def _names(labels, names):
    if isinstance(labels, torch.Tensor):
        labels = labels.tolist()
    if isinstance(labels, numbers.Integral):
        labels = [labels]
    return [names[int(i)] for i in labels]


def get_fashion_mnist_labels(labels):
    """Fashion-MNIST class indices -> text labels (d2l)."""
    return _names(labels, FASHION_MNIST_CLASSES)


def get_kmnist_labels(labels):
    """KMNIST class indices -> romanized hiragana ('o', 'ki', ...)."""
    return _names(labels, KMNIST_CLASSES)


def get_cifar10_labels(labels):
    """CIFAR-10 class indices -> text labels ('airplane', ...)."""
    return _names(labels, CIFAR10_CLASSES)


class _CIFAR10(torchvision.datasets.CIFAR10):
    """torchvision's CIFAR10, except that in a folder marked synthetic the md5 check (which
    fake files can never pass) becomes an existence check.  Real folders are checked as usual."""

    def _folder(self):
        return Path(self.root) / self.base_folder

    def _synthetic(self):
        return (self._folder() / SYNTHETIC_MARKER).is_file()

    def _check_integrity(self):
        if not self._synthetic():
            return super()._check_integrity()
        return all((self._folder() / name).is_file() for name, _ in self.train_list + self.test_list)

    def _load_meta(self):
        if not self._synthetic():
            return super()._load_meta()
        with open(self._folder() / self.meta['filename'], 'rb') as f:
            self.classes = pickle.load(f, encoding='latin1')[self.meta['key']]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


# ---- what each data set looks like on disk ------------------------------------------

_IDX = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
        't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']


@dataclass(frozen=True)
class _Spec:
    title: str
    cls: type
    folder: str  # relative to the data root
    files: list
    how: str  # how to place the files by hand
    size: int  # image side
    mean: tuple
    std: tuple

    @property
    def channels(self):
        return len(self.mean)


def _idx_how(cls):
    return (f'download {", ".join(f + ".gz" for f in _IDX)} from {cls.mirrors[0]} and put them '
            f'in that folder (unpacked or not)')


_FASHION = _Spec('Fashion-MNIST', torchvision.datasets.FashionMNIST, 'FashionMNIST/raw', _IDX,
                 _idx_how(torchvision.datasets.FashionMNIST), 28, (0.2860,), (0.3530,))
_KMNIST = _Spec('KMNIST', torchvision.datasets.KMNIST, 'KMNIST/raw', _IDX,
                _idx_how(torchvision.datasets.KMNIST), 28, (0.1918,), (0.3483,))
_CIFAR = _Spec('CIFAR-10', _CIFAR10, 'cifar-10-batches-py',
               [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch', 'batches.meta'],
               f'download {_CIFAR10.url} and unpack it in the data root (it holds '
               f'cifar-10-batches-py/), or put the .tar.gz in the data root with download=True',
               32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


def _default_augment(spec, hw):
    if spec is _CIFAR:
        return nn.Sequential(aug.RandomCrop(hw, padding=max(1, round(hw[0] / 8))),
                             aug.RandomHorizontalFlip())
    if spec is _FASHION:
        return nn.Sequential(aug.RandomTranslate(0.1), aug.RandomHorizontalFlip())
    return aug.RandomTranslate(0.1)


# ---- diagnosing missing / corrupt files ---------------------------------------------

_EMPTY = 'is empty (0 bytes: an interrupted download or copy)'


def _head(path, n):
    with open(path, 'rb') as f:  # closed at once: no ResourceWarning, no open descriptor
        return f.read(n)


def _idx_problem(path):
    """None if ``path`` looks like a complete idx file, else what is wrong with it."""
    size = path.stat().st_size
    if size == 0:
        return _EMPTY
    head = _head(path, 16)
    if head[:2] == b'\x1f\x8b':
        return 'is gzip-compressed; unpack it (or rename it to .gz)'
    want_magic = 0x0803 if '-images-' in path.name else 0x0801
    magic = int.from_bytes(head[:4], 'big') if len(head) >= 4 else None
    if magic != want_magic:
        return f'is not an idx file (magic {magic!r}, expected {want_magic:#06x})'
    ndim = magic & 0xFF
    if len(head) < 4 * (ndim + 1):
        return f'is truncated ({size:,} bytes)'
    dims = [int.from_bytes(head[4 * i + 4:4 * i + 8], 'big') for i in range(ndim)]
    want = 4 * (ndim + 1) + math.prod(dims)
    if size != want:
        return (f'is truncated or damaged: its header says {"x".join(map(str, dims))} = '
                f'{want:,} bytes, the file has {size:,}')
    return None


def _problems(spec, folder):
    """(missing names, {name: what is wrong}) for the data set's files in ``folder``."""
    missing = [f for f in spec.files if not (folder / f).is_file()]
    corrupt = {}
    present = [f for f in spec.files if f not in missing]
    if spec.cls is _CIFAR10:
        corrupt = {f: _EMPTY for f in present if (folder / f).stat().st_size == 0}
        if not (folder / SYNTHETIC_MARKER).is_file():
            md5 = dict(_CIFAR10.train_list + _CIFAR10.test_list)
            md5[_CIFAR10.meta['filename']] = _CIFAR10.meta['md5']
            for f in (f for f in present if f not in corrupt):
                if not torchvision.datasets.utils.check_integrity(str(folder / f), md5[f]):
                    corrupt[f] = ('failed the md5 check (damaged or not the official files; fake '
                                  f'files from my_utils.synthetic need the {SYNTHETIC_MARKER} marker)')
    else:
        corrupt = {f: p for f in present if (p := _idx_problem(folder / f))}
        for split in ('train', 't10k'):
            names = [f'{split}-images-idx3-ubyte', f'{split}-labels-idx1-ubyte']
            if all(n in present and n not in corrupt for n in names):
                counts = [int.from_bytes(_head(folder / n, 8)[4:8], 'big') for n in names]
                if counts[0] != counts[1]:
                    corrupt[names[1]] = f'holds {counts[1]:,} labels for {counts[0]:,} images'
    return missing, corrupt


def _short(err):
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return f'{type(err).__name__}: {lines[-1][:200] if lines else ""}'


def _unpickle_problems(spec, folder):
    """{name: why} for CIFAR batches that exist but do not unpickle (found only after a read failed)."""
    bad = {}
    for name in spec.files:
        if (folder / name).is_file():
            try:
                with open(folder / name, 'rb') as f:
                    pickle.load(f, encoding='latin1')
            except Exception as err:
                bad[name] = f'could not be read ({_short(err)})'
    return bad


def _data_error(spec, root, download, err=None, unreadable=None):
    folder = root / spec.folder
    missing, corrupt = _problems(spec, folder)
    corrupt.update({k: v for k, v in (unreadable or {}).items() if k not in corrupt})
    what = []
    if missing:
        what.append(f'missing {", ".join(missing)}')
    by_reason = {}  # group files that fail for the same reason
    for name, why in corrupt.items():
        by_reason.setdefault(why, []).append(name)
    what += [f'{", ".join(names)} {why}' for why, names in by_reason.items()]
    if unreadable:
        pass  # the files named above say what failed
    elif (missing or corrupt) and not download:
        what.append('nothing was downloaded (download=False)')
    elif (missing or corrupt) and err is not None:
        what.append(f'downloading failed (no network? {_short(err)})')
    elif err is not None:
        what.append(f'reading failed ({_short(err)})')
    fix = spec.how
    if corrupt:
        fix = f'delete the damaged files and load again with download=True, or {spec.how}'
    if any((f / SYNTHETIC_MARKER).is_file() for f in (folder, folder.parent)):
        fix = (f'this folder holds a synthetic set ({SYNTHETIC_MARKER} marker): write it again with '
               f'my_utils.synthetic, or delete it and {spec.how}')
    return DataError(
        f'{spec.title} could not be loaded from {folder}: {"; ".join(what)}.\n'
        f'Expected files there: {", ".join(spec.files)}.\n'
        f'To fix: {fix}; or set MY_UTILS_DATA (or pass root=) to a folder that holds '
        f'{spec.folder}/ with these files.',
        dataset=spec.title, folder=folder, missing=missing, problems=corrupt)


def _check_folders(spec, root):
    """Fail before reading anything if the way to the files is blocked: a file where a folder
    should be, or a folder or file that cannot be read (torchvision would say 'missing' or
    raise a bare PermissionError)."""
    path = root
    for part in ('',) + Path(spec.folder).parts:
        path = path / part
        if path.exists() and not path.is_dir():
            where = dict(dataset=spec.title, folder=root / spec.folder, missing=spec.files)
            if path == root:
                raise DataError(f'The data folder {root} is a file, not a folder. Pass root= (or set '
                                f'MY_UTILS_DATA to) the folder that holds {spec.folder}/, not a file.',
                                **where)
            raise DataError(f'{path} is a file, not a folder: {spec.title} expects the folder '
                            f'{root / spec.folder} there. Move or delete that file, or pass another root=.',
                            **where)
        if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
            raise _permission_error(spec, path)
    folder = root / spec.folder
    for name in spec.files:
        for f in (folder / name, folder / (name + '.gz')):
            if f.is_file() and not os.access(f, os.R_OK):
                raise _permission_error(spec, f)


def _permission_error(spec, path):
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    return DataError(f'{spec.title}: {path} cannot be read (permission denied). Give yourself read '
                     f'access (chmod -R u+rwX {path}), or pass root= (or set MY_UTILS_DATA to) a folder '
                     f'of your own that holds {spec.folder}/.',
                     dataset=spec.title, folder=folder,
                     problems={} if path.is_dir() else {path.name: 'cannot be read (permission denied)'})


def _unpack_gz(spec, folder):
    """Unpack hand-placed ``<file>.gz`` copies.  torchvision only unpacks .gz files whose md5
    matches its list (a re-compressed copy never does), and only with download=True."""
    for name in spec.files:
        gz, target = folder / (name + '.gz'), folder / name
        if gz.is_file() and not target.exists():
            if gz.stat().st_size == 0:
                raise DataError(f'{gz} {_EMPTY}. Delete it and download it again, or place the '
                                f'unpacked {name} in {folder}.', dataset=spec.title, folder=folder,
                                missing=[name], problems={gz.name: _EMPTY})
            part = folder / (name + '.part')
            try:  # via a temporary name, so an interrupted unpack leaves no truncated file
                with gzip.open(gz) as src, open(part, 'wb') as dst:
                    shutil.copyfileobj(src, dst)
                part.replace(target)
            except (OSError, EOFError) as err:
                part.unlink(missing_ok=True)
                raise DataError(f'{gz} could not be unpacked ({_short(err)}). Delete it, or '
                                f'unpack it by hand into {folder}.', dataset=spec.title, folder=folder,
                                missing=[name],
                                problems={gz.name: f'could not be unpacked ({_short(err)})'}) from None


def _dataset(spec, root, train, download):
    if spec.cls is not _CIFAR10:
        _unpack_gz(spec, root / spec.folder)
        if _problems(spec, root / spec.folder)[1]:
            raise _data_error(spec, root, download)  # torchvision would fail deep inside, or not at all
    # A failed download must leave no empty folders behind (torchvision makes them first).
    made = [f for f in (root / spec.folder, (root / spec.folder).parent) if not f.exists()]
    try:
        ds = spec.cls(str(root), train=train, download=download)
    except PermissionError as err:
        raise _permission_error(spec, err.filename or root / spec.folder) from None
    except Exception as err:  # download or read failure: explain instead of a deep stack trace
        for folder in made:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        bad = _unpickle_problems(spec, root / spec.folder) if spec.cls is _CIFAR10 else None
        raise _data_error(spec, root, download, err, bad) from None
    targets = torch.as_tensor(ds.targets)
    if len(targets) != len(ds.data) or (len(targets) and (targets.min() < 0 or targets.max() > 9)):
        raise DataError(f'{spec.title} in {root / spec.folder} is corrupt: labels must be 0..9, one '
                        f'per image. Delete the files and load again with download=True.',
                        dataset=spec.title, folder=root / spec.folder,
                        problems={'labels': 'not 0..9, one per image'})
    return ds


# ---- the loaders --------------------------------------------------------------------

class _SampleTransform:
    """PIL image -> float (C, H, W): ToTensor, resize, augment, normalize (a class, not a
    lambda, so DataLoader workers can pickle it)."""

    def __init__(self, size, augment, stats):
        self.size, self.augment, self.stats = size, augment, stats

    def __call__(self, img):
        return finish_images(TVF.to_tensor(img), self.size, self.augment, self.stats)


def _check_count(n, name):
    if n is None:
        return None
    if not is_int(n, minimum=1):
        raise ValueError(f'{name} must be None (whole split) or a positive int, got {n!r}')
    return int(n)


def _check_workers(num_workers):
    if num_workers is None:
        return None
    if not is_int(num_workers, minimum=0):
        raise ValueError(f'num_workers must be None (automatic) or an int >= 0, got {num_workers!r}')
    return int(num_workers)


def _workers(num_workers):
    if num_workers is None:
        from .devices import get_dataloader_workers  # lazy: keeps datasets.py importable on its own
        return get_dataloader_workers()
    return num_workers


def _load(spec, batch_size, resize, *, root, device, augment, normalize, n_train, n_test,
          download, num_workers, shuffle, seed):
    # Check every argument before touching the disk.
    batch_size = check_batch_size(batch_size)
    size = check_resize(resize)
    if augment is True:
        hw = (spec.size, spec.size) if size is None else (size[0], size[-1])
        augment = _default_augment(spec, hw)
    augment = check_augment(augment)
    stats = normalize_stats(normalize, spec.channels, default=(spec.mean, spec.std))
    n_train, n_test = _check_count(n_train, 'n_train'), _check_count(n_test, 'n_test')
    num_workers = _check_workers(num_workers)

    root = data_root(root)
    _check_folders(spec, root)
    try:
        train_ds = _dataset(spec, root, True, download)
        test_ds = _dataset(spec, root, False, download)
    except PermissionError as err:  # one that os.access did not foresee (e.g. an ACL)
        raise _permission_error(spec, err.filename or root / spec.folder) from None

    if device is not None:
        def fast(ds, n, train):
            return DeviceLoader(ds.data[:n], ds.targets[:n], batch_size, shuffle=shuffle and train,
                                device=device, augment=augment if train else None,
                                normalize=stats, resize=resize, seed=seed)
        return fast(train_ds, n_train, True), fast(test_ds, n_test, False)

    workers = _workers(num_workers)
    train_ds.transform = _SampleTransform(size, augment, stats)
    test_ds.transform = _SampleTransform(size, None, stats)  # never augment the test split
    if n_train is not None and n_train < len(train_ds):
        train_ds = Subset(train_ds, range(n_train))
    if n_test is not None and n_test < len(test_ds):
        test_ds = Subset(test_ds, range(n_test))
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return (DataLoader(train_ds, batch_size, shuffle=shuffle, num_workers=workers,
                       generator=generator),
            DataLoader(test_ds, batch_size, shuffle=False, num_workers=workers))


_LOADER_DOC = """Load {title}; return (train_iter, test_iter).

    batch_size, resize (int or (h, w)): as in d2l; the training iterator is shuffled.
    root: data folder (default ``data_root()``).  device: None -> torch DataLoaders (workers
    from devices.get_dataloader_workers(), or ``num_workers``); 'cpu'/'cuda'/torch.device ->
    DeviceLoaders holding the split as uint8 there.  seed: fixes the shuffling order.
    augment: None/False, True (data set default, see module docstring) or a callable on
    float (N, C, H, W) / (C, H, W) images; training split only.  normalize: False, True
    ({stats}) or (mean, std).  n_train / n_test: keep only the first n examples.
    Missing or corrupt files raise DataError; bad arguments ValueError / TypeError.
    """


def load_data_fashion_mnist(batch_size, resize=None, *, root=None, device=None, augment=None,
                            normalize=False, n_train=None, n_test=None, download=True,
                            num_workers=None, shuffle=True, seed=None):
    return _load(_FASHION, **locals())  # locals() = exactly the arguments above


def load_data_kmnist(batch_size, resize=None, *, root=None, device=None, augment=None,
                     normalize=False, n_train=None, n_test=None, download=True,
                     num_workers=None, shuffle=True, seed=None):
    return _load(_KMNIST, **locals())


def load_data_cifar10(batch_size, resize=None, *, root=None, device=None, augment=None,
                      normalize=False, n_train=None, n_test=None, download=True,
                      num_workers=None, shuffle=True, seed=None):
    return _load(_CIFAR, **locals())


for _fn, _spec in ((load_data_fashion_mnist, _FASHION), (load_data_kmnist, _KMNIST),
                   (load_data_cifar10, _CIFAR)):
    _fn.__doc__ = _LOADER_DOC.format(title=_spec.title,
                                     stats=f'mean {_spec.mean}, std {_spec.std}')
