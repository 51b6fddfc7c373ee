"""DeviceLoader: a whole split kept as uint8 on one device and batched there.

Small image sets (Fashion-MNIST, KMNIST, CIFAR-10) fit on a GPU many times over as
uint8.  Keeping them there and converting one batch at a time removes the per-sample
PIL/ToTensor work and the host->device copies that dominate small-model training.
"""
import math

import numpy as np
import torch
from torch.utils.data import TensorDataset
import torchvision.transforms.v2.functional as TF

from .arguments import is_int

__all__ = ['DeviceLoader']


# ---- argument checks shared with datasets.py -------------------------------------------

def check_batch_size(batch_size):
    if not is_int(batch_size, minimum=1):
        raise ValueError(f'batch_size must be a positive integer (e.g. 256), got {batch_size!r}')
    return int(batch_size)


def check_resize(resize):
    """None, int (shorter side) or (height, width) -> None or a list for TF.resize."""
    if resize is None:
        return None
    if is_int(resize, minimum=1):
        return [int(resize)]
    if (isinstance(resize, (tuple, list)) and len(resize) == 2
            and all(is_int(v, minimum=1) for v in resize)):
        return [int(resize[0]), int(resize[1])]
    raise ValueError(f'resize must be None, a positive int (e.g. 224) or a pair (height, width) '
                     f'of positive ints; got {resize!r}')


def check_augment(augment):
    """None/False -> None; a callable -> itself (True is resolved by datasets.py)."""
    if augment is None or augment is False:
        return None
    if augment is True:
        raise TypeError('augment=True means "the data set\'s default augmentation", which only the '
                        'load_data_* functions know; pass a callable such as '
                        'my_utils.augment.RandomHorizontalFlip() instead')
    if not callable(augment):
        raise TypeError(f'augment must be None, False, True (data set default) or a callable that '
                        f'takes a float image tensor (N, C, H, W) or (C, H, W) and returns the same '
                        f'shape, e.g. my_utils.augment.RandomCrop(28, padding=2); '
                        f'got {type(augment).__name__} {augment!r}')
    return augment


def normalize_stats(normalize, channels, default=None):
    """False/None -> None; True -> default; (mean, std) -> two float tensors of shape (C, 1, 1)."""
    if normalize is None or normalize is False:
        return None
    if normalize is True:
        if default is None:
            raise ValueError('normalize=True needs the data set\'s statistics; pass (mean, std) '
                             'instead, e.g. normalize=(0.2860, 0.3530)')
        normalize = default
    each = 'a number' if channels == 1 else f'a number or {channels} numbers (one per channel)'
    hint = (f'normalize must be False, True (data set statistics) or (mean, std) where each is '
            f'{each} and std > 0, e.g. (0.5, 0.25); got {normalize!r}')
    if not isinstance(normalize, (tuple, list)) or len(normalize) != 2:
        raise ValueError(hint)
    stats = []
    for value in normalize:
        try:
            t = torch.as_tensor(value, dtype=torch.float32).flatten()
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(hint) from None
        if t.numel() not in (1, channels) or not torch.isfinite(t).all():
            raise ValueError(hint)
        stats.append(t.expand(channels).reshape(channels, 1, 1).clone())
    if not (stats[1] > 0).all():
        raise ValueError(hint)
    return stats[0], stats[1]


# ---- the per-batch pipeline, shared with the classic path ---------------------------

def to_float(images_uint8):
    """uint8 -> float32 in [0, 1], the same arithmetic as torchvision's ToTensor."""
    return images_uint8.to(torch.float32).div(255)


def resize_images(x, size):
    return TF.resize(x, size, antialias=True)


def apply_normalize(x, stats):
    mean, std = stats
    return (x - mean.to(x.device)) / std.to(x.device)


def finish_images(x, size=None, augment=None, stats=None):
    """Float images in [0, 1] -> resize, augment, normalize: the steps both data paths share,
    in one place so that they stay in the same order."""
    if size is not None:
        x = resize_images(x, size)
    if augment is not None:
        x = augment(x)
    if stats is not None:
        x = apply_normalize(x, stats)
    return x


def _as_nchw_uint8(images):
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise TypeError(f'images must be a torch.Tensor or numpy array, got {type(images).__name__}')
    if images.dtype != torch.uint8:
        raise TypeError(f'images must be uint8 (0..255), got {images.dtype}; convert float images '
                        f'in [0, 1] with (x * 255).round().to(torch.uint8)')
    if images.dim() == 3:  # (N, H, W): one channel
        return images.unsqueeze(1)
    if images.dim() == 4:
        if images.shape[1] <= 4:  # (N, C, H, W)
            return images
        if images.shape[-1] <= 4:  # (N, H, W, C), e.g. CIFAR's numpy arrays
            return images.permute(0, 3, 1, 2)
    raise ValueError(f'images must have shape (N, H, W), (N, C, H, W) or (N, H, W, C) with at most '
                     f'4 channels; got {tuple(images.shape)}')


class DeviceLoader:
    """Iterate (X, y) batches of a uint8 image set stored on ``device``.

    X is float32 (B, C, H, W): /255, then ``resize``, then ``augment``, then ``normalize``
    ((mean, std)).  With ``shuffle`` the order is redrawn every epoch (CPU randperm --
    seeded by ``seed`` or else by torch's global RNG -- moved to the device).  With
    shuffle off it yields the same tensors as the classic DataLoader path.
    ``label_range``: (lowest, highest) label, read once when built (None without labels).
    """

    def __init__(self, images, labels, batch_size, *, shuffle=False, device=None, augment=None,
                 normalize=None, resize=None, drop_last=False, seed=None):
        self.batch_size = check_batch_size(batch_size)
        images = _as_nchw_uint8(images)
        labels = torch.as_tensor(labels)
        if labels.dim() != 1 or len(labels) != len(images):
            raise ValueError(f'labels must be 1-D with one label per image: got labels of shape '
                             f'{tuple(labels.shape)} for {len(images)} images')
        try:
            self.device = torch.device(device) if device is not None else images.device
            self.images = images.to(self.device).contiguous()  # uint8: no float copy of the set
        except RuntimeError as err:
            raise ValueError(f'device={device!r} cannot be used here ({str(err).splitlines()[0]}); '
                             f'pass "cpu", a device from my_utils.try_gpu(), or device=None for a '
                             f'classic DataLoader') from None
        # The labels' range, read once here (on the host, before they move): train_ch6 checks
        # it against the model's outputs instead of checking every batch on the device.
        labels = labels.to(torch.int64)
        self.label_range = (tuple(torch.stack((labels.min(), labels.max())).tolist())
                            if len(labels) else None)
        self.labels = labels.to(self.device)
        self.dataset = TensorDataset(self.images, self.labels)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.augment = check_augment(augment)
        self.resize = check_resize(resize)
        stats = normalize_stats(normalize, self.images.shape[1])
        self.normalize = None if stats is None else tuple(s.to(self.device) for s in stats)
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)

    def __len__(self):
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def transform(self, images_uint8):
        """The per-batch pipeline: uint8 (B, C, H, W) -> float32 batch."""
        return finish_images(to_float(images_uint8), self.resize, self.augment, self.normalize)

    def __iter__(self):
        n, bs = len(self.labels), self.batch_size
        order = None
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.device)
        for start in range(0, len(self) * bs, bs):
            if order is None:  # contiguous slices: views, no gather
                xb, yb = self.images[start:start + bs], self.labels[start:start + bs]
            else:
                idx = order[start:start + bs]
                xb, yb = self.images[idx], self.labels[idx]
            yield self.transform(xb), yb

    def __repr__(self):
        return (f'DeviceLoader({len(self.dataset)} images {tuple(self.images.shape[1:])} uint8 on '
                f'{self.device}, batch_size={self.batch_size}, shuffle={self.shuffle}, '
                f'batches={len(self)})')
