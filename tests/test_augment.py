"""Batched per-sample augmentations: shapes, dtypes, per-sample randomness, exact semantics."""
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from my_utils.augment import RandomCrop, RandomErasing, RandomHorizontalFlip, RandomTranslate

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
ALL = [lambda: RandomCrop(28, padding=4), lambda: RandomHorizontalFlip(),
       lambda: RandomTranslate(0.2), lambda: RandomErasing(p=1.0),
       lambda: nn.Sequential(RandomCrop(28, padding=2), RandomHorizontalFlip(), RandomErasing())]


def _batch(n=64, c=3, h=28, w=28, device='cpu', dtype=torch.float32):
    """n copies of ONE random image, so any difference between samples comes from the augmentation."""
    torch.manual_seed(0)
    img = torch.rand(c, h, w, dtype=dtype) + 0.1  # > 0 everywhere: zero fill is visible
    return img.expand(n, c, h, w).contiguous().to(device), img.to(device)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('make', ALL, ids=['crop', 'flip', 'translate', 'erasing', 'chain'])
def test_shape_dtype_device_and_per_sample(make, device):
    aug = make()
    for dtype in (torch.float32, torch.float64):
        x, img = _batch(device=device, dtype=dtype)
        out = aug(x)
        assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
        distinct = torch.unique(out.flatten(1), dim=0).shape[0]
        assert distinct > 1, 'all samples of the batch got the same augmentation'
        single = aug(img)  # one (C, H, W) image works too
        assert single.shape == img.shape and single.dtype == dtype


def _windows(padded, h, w):
    """All h x w windows of one padded (C, Hp, Wp) image, as (K, C, h, w)."""
    c = padded.shape[0]
    u = padded.unfold(1, h, 1).unfold(2, w, 1)  # (C, nh, nw, h, w)
    return u.permute(1, 2, 0, 3, 4).reshape(-1, c, h, w)


def test_random_crop_is_a_window_of_the_padded_image():
    x, img = _batch(n=32, c=2, h=10, w=12)
    out = RandomCrop((8, 9), padding=2)(x)
    assert out.shape == (32, 2, 8, 9)
    windows = _windows(F.pad(img, (2, 2, 2, 2)), 8, 9)
    for sample in out:
        assert (windows == sample).flatten(1).all(1).any()
    same = torch.rand(4, 1, 8, 8)
    assert torch.equal(RandomCrop(8)(same), same)  # full-size crop without padding: identity


def test_flip_probabilities():
    x, img = _batch(n=200)
    assert torch.equal(RandomHorizontalFlip(p=0.0)(x), x)
    assert torch.equal(RandomHorizontalFlip(p=1.0)(x), x.flip(-1))
    out = RandomHorizontalFlip(p=0.5)(x)
    flipped = (out == img.flip(-1)).flatten(1).all(1)
    kept = (out == img).flatten(1).all(1)
    assert (flipped | kept).all()
    assert 40 < flipped.sum() < 160  # about half, drawn per sample


def test_translate_is_a_zero_filled_integer_shift():
    x, img = _batch(n=64, c=1, h=20, w=20)
    out = RandomTranslate(0.1)(x)  # shifts within +-2 pixels
    shifts = {}
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            s = torch.zeros_like(img)
            s[:, max(dy, 0):20 + min(dy, 0), max(dx, 0):20 + min(dx, 0)] = \
                img[:, max(-dy, 0):20 + min(-dy, 0), max(-dx, 0):20 + min(-dx, 0)]
            shifts[(dy, dx)] = s
    used = set()
    for sample in out:
        match = [k for k, s in shifts.items() if torch.equal(sample, s)]
        assert match, 'output is not a zero-filled shift within max_fraction'
        used.add(match[0])
    assert len(used) > 3
    assert torch.equal(RandomTranslate(0.0)(x), x)


def test_erasing_fills_one_rectangle_with_value():
    x = torch.ones(64, 3, 32, 32)
    out = RandomErasing(p=1.0, value=0.0)(x)
    erased = out[:, 0] == 0
    assert torch.equal(erased[:, None].expand_as(out), out == 0)  # same box in every channel
    for box in erased:
        rows, cols = box.any(1).nonzero().flatten(), box.any(0).nonzero().flatten()
        assert box.sum() == len(rows) * len(cols)  # a filled rectangle
        area = box.sum().item() / (32 * 32)
        assert 0.015 <= area <= 0.36  # scale=(0.02, 0.33), up to rounding of the sides
    assert torch.equal(RandomErasing(p=0.0)(x), x)
    noisy = RandomErasing(p=1.0, value='random')(x)
    assert (noisy != 1).any() and noisy.shape == x.shape


def test_seeded_and_chained():
    x, _ = _batch(n=16)
    chain = nn.Sequential(RandomCrop(28, padding=4), RandomHorizontalFlip(), RandomTranslate(0.1),
                          RandomErasing())
    torch.manual_seed(1)
    a = chain(x)
    torch.manual_seed(1)
    assert torch.equal(chain(x), a)
    assert 'padding=4' in repr(chain)


@pytest.mark.parametrize('make, message', [
    (lambda: RandomCrop(0), 'size must be a positive int'),
    (lambda: RandomCrop(28, padding=-1), 'padding must be an int >= 0'),
    (lambda: RandomCrop(40, padding=4)(torch.rand(2, 1, 28, 28)), 'larger than the padded image'),
    (lambda: RandomHorizontalFlip(p=1.5), 'p must be a probability between 0 and 1'),
    (lambda: RandomTranslate(2), 'max_fraction must be a float in [0, 1]'),
    (lambda: RandomErasing(scale=(0.5, 0.1)), 'scale must be a pair (low, high) with 0 < low <= high <= 1'),
    (lambda: RandomErasing(ratio=0.3), 'ratio must be a pair (low, high)'),
    (lambda: RandomErasing(value='noise'), "value must be a number or 'random'"),
    (lambda: RandomHorizontalFlip()(torch.rand(28, 28)), 'expected an image batch (N, C, H, W)'),
])
def test_bad_arguments(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value)


def test_not_a_tensor():
    with pytest.raises(TypeError, match='expected a torch.Tensor'):
        RandomHorizontalFlip()(torch.rand(1, 4, 4).numpy())
