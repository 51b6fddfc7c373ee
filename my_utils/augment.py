"""Batched random augmentations that draw fresh parameters for every sample.

Each module takes a float tensor (N, C, H, W) or a single image (C, H, W), on any
device, and returns the same shape and dtype.  All randomness is drawn as tensors on
the input's device (torch's global RNG, so ``torch.manual_seed`` makes it repeatable)
and applied with index arithmetic -- no Python loop over samples.

Why not torchvision.transforms.v2?  Its RandomCrop / RandomHorizontalFlip /
RandomAffine / RandomErasing draw ONE set of parameters per call, so on a batch every
sample gets the same crop, flip, shift or box.  That is fine per image (DataLoader
workers) but wrong for a whole batch on the GPU, which is what these are for.

They always augment when called (no train/eval switch): the loaders only call them on
the training split.  Chain them with ``nn.Sequential``.
"""
import math
import numbers

import torch
from torch import nn
import torch.nn.functional as F

from .arguments import is_int, is_number

__all__ = ['RandomCrop', 'RandomHorizontalFlip', 'RandomTranslate', 'RandomErasing']


def _pair(value, name):
    """int or (h, w) -> (h, w) of positive ints."""
    pair = (value, value) if isinstance(value, numbers.Integral) else value
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or not all(is_int(v, minimum=1) for v in pair)):
        raise ValueError(f'{name} must be a positive int or a pair (height, width) of positive '
                         f'ints, e.g. 28 or (28, 28); got {value!r}')
    return int(pair[0]), int(pair[1])


def _probability(p, name='p'):
    if not is_number(p, 0, 1):
        raise ValueError(f'{name} must be a probability between 0 and 1, got {p!r}')
    return float(p)


def _range(value, name, upper=None):
    """(low, high) with 0 < low <= high (<= upper) -> tuple of floats."""
    ok = (isinstance(value, (tuple, list)) and len(value) == 2
          and all(is_number(v) for v in value)
          and 0 < value[0] <= value[1] and (upper is None or value[1] <= upper))
    if not ok:
        bound = f' <= {upper:g}' if upper is not None else ''
        raise ValueError(f'{name} must be a pair (low, high) with 0 < low <= high{bound}, '
                         f'got {value!r}')
    return float(value[0]), float(value[1])


def _as_batch(x):
    """Return (batch, was_single) so every module can work on (N, C, H, W)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'expected a torch.Tensor image batch (N, C, H, W) or image (C, H, W), '
                        f'got {type(x).__name__}')
    if x.dim() == 3:
        return x.unsqueeze(0), True
    if x.dim() == 4:
        return x, False
    raise ValueError(f'expected an image batch (N, C, H, W) or one image (C, H, W), '
                     f'got a tensor of shape {tuple(x.shape)}')


def _gather(x, rows, cols):
    """out[n, c, i, j] = x[n, c, rows[n, i], cols[n, j]] -- one advanced-indexing gather."""
    n, c = x.shape[:2]
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    chan = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return x[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


class RandomCrop(nn.Module):
    """Zero-pad by ``padding`` then cut a random ``size`` window, independently per sample."""

    def __init__(self, size, padding=0):
        super().__init__()
        self.size = _pair(size, 'size')
        if not is_int(padding, minimum=0):
            raise ValueError(f'padding must be an int >= 0 (pixels added on each side), '
                             f'got {padding!r}')
        self.padding = int(padding)

    def forward(self, x):
        xb, single = _as_batch(x)
        n, _, h, w = xb.shape
        th, tw = self.size
        p = self.padding
        if th > h + 2 * p or tw > w + 2 * p:
            raise ValueError(f'RandomCrop size {self.size} is larger than the padded image '
                             f'({h + 2 * p}, {w + 2 * p}); lower size or raise padding')
        if p:
            xb = F.pad(xb, (p, p, p, p))
        dev = xb.device
        top = torch.randint(0, h + 2 * p - th + 1, (n, 1), device=dev)
        left = torch.randint(0, w + 2 * p - tw + 1, (n, 1), device=dev)
        out = _gather(xb, top + torch.arange(th, device=dev), left + torch.arange(tw, device=dev))
        return out[0] if single else out

    def extra_repr(self):
        return f'size={self.size}, padding={self.padding}'


class RandomHorizontalFlip(nn.Module):
    """Mirror each sample left-right with probability ``p``."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = _probability(p)

    def forward(self, x):
        xb, single = _as_batch(x)
        flip = torch.rand(xb.shape[0], device=xb.device) < self.p
        out = torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)
        return out[0] if single else out

    def extra_repr(self):
        return f'p={self.p}'


class RandomTranslate(nn.Module):
    """Shift each sample by a random whole number of pixels, filling with zeros.

    Like ``RandomAffine(degrees=0, translate=(fx, fy))``: the shift is drawn uniformly
    from [-fx * W, fx * W] (and [-fy * H, fy * H]) and rounded.  ``max_fraction`` is one
    float for both axes or a pair (fx, fy).
    """

    def __init__(self, max_fraction=0.1):
        super().__init__()
        fr = max_fraction if isinstance(max_fraction, (tuple, list)) else (max_fraction,) * 2
        if len(fr) != 2 or not all(is_number(f, 0, 1) for f in fr):
            raise ValueError(f'max_fraction must be a float in [0, 1] or a pair (fx, fy) of them, '
                             f'e.g. 0.1; got {max_fraction!r}')
        self.max_fraction = (float(fr[0]), float(fr[1]))

    def forward(self, x):
        xb, single = _as_batch(x)
        n, _, h, w = xb.shape
        dev = xb.device
        fx, fy = self.max_fraction
        dx = ((torch.rand(n, 1, device=dev) * 2 - 1) * (fx * w)).round().long()
        dy = ((torch.rand(n, 1, device=dev) * 2 - 1) * (fy * h)).round().long()
        # Output pixel (i, j) comes from (i - dy, j - dx); outside the image -> 0.
        rows = torch.arange(h, device=dev) - dy
        cols = torch.arange(w, device=dev) - dx
        inside = (((rows >= 0) & (rows < h))[:, None, :, None]
                  & ((cols >= 0) & (cols < w))[:, None, None, :])
        out = _gather(xb, rows.clamp(0, h - 1), cols.clamp(0, w - 1))
        out = torch.where(inside, out, torch.zeros((), dtype=out.dtype, device=dev))
        return out[0] if single else out

    def extra_repr(self):
        return f'max_fraction={self.max_fraction}'


class RandomErasing(nn.Module):
    """With probability ``p`` per sample, fill a random rectangle with ``value``.

    Same recipe as torchvision's RandomErasing: area fraction from ``scale``, aspect
    ratio log-uniform in ``ratio``, 10 tries and the first that fits is used (no
    erasing if none fits).  ``value`` is a number or ``'random'`` (standard normal noise).
    """

    tries = 10

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0.0):
        super().__init__()
        self.p = _probability(p)
        self.scale = _range(scale, 'scale', upper=1.0)
        self.ratio = _range(ratio, 'ratio')
        if not (value == 'random' or is_number(value)):
            raise ValueError(f"value must be a number or 'random', got {value!r}")
        self.value = value

    def forward(self, x):
        xb, single = _as_batch(x)
        n, _, h, w = xb.shape
        dev = xb.device
        shape = (n, self.tries)
        area = h * w * torch.empty(shape, device=dev).uniform_(*self.scale)
        log_r = torch.empty(shape, device=dev).uniform_(math.log(self.ratio[0]),
                                                       math.log(self.ratio[1]))
        eh = (area * log_r.exp()).sqrt().round().long()
        ew = (area / log_r.exp()).sqrt().round().long()
        fits = (eh < h) & (ew < w)
        first = fits.long().argmax(1, keepdim=True)  # first try that fits (0 if none)
        eh, ew = eh.gather(1, first), ew.gather(1, first)
        erase = fits.any(1, keepdim=True) & (torch.rand(n, 1, device=dev) < self.p)
        top = (torch.rand(n, 1, device=dev) * (h - eh + 1)).long()
        left = (torch.rand(n, 1, device=dev) * (w - ew + 1)).long()
        r = torch.arange(h, device=dev)
        c = torch.arange(w, device=dev)
        box = (((r >= top) & (r < top + eh) & erase)[:, None, :, None]
               & ((c >= left) & (c < left + ew))[:, None, None, :])
        fill = (torch.randn_like(xb) if self.value == 'random'
                else torch.tensor(self.value, dtype=xb.dtype, device=dev))
        out = torch.where(box, fill, xb)
        return out[0] if single else out

    def extra_repr(self):
        return f'p={self.p}, scale={self.scale}, ratio={self.ratio}, value={self.value!r}'
