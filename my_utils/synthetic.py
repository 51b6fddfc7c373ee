"""Small fake KMNIST / CIFAR-10 sets written in the real on-disk formats.

For tests and quick-mode notebooks on machines without the real files.  The images
are learnable (a fixed random pattern per class, shifted, dimmed and noised per
sample) but they are NOT the real data: label any result obtained on them synthetic.
Each set's folder gets a marker file ``MY_UTILS_SYNTHETIC``; my_utils.datasets skips
torchvision's CIFAR-10 md5 check only for folders that carry it (their md5s can't
match the hard-coded ones of the real files).
"""
import pickle
import struct
from pathlib import Path

import numpy as np

__all__ = ['write_fake_kmnist', 'write_fake_cifar10']

SYNTHETIC_MARKER = 'MY_UTILS_SYNTHETIC'
CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer',
                   'dog', 'frog', 'horse', 'ship', 'truck']


def _mark(folder, what):
    (folder / SYNTHETIC_MARKER).write_text(
        f'{what} in this folder is synthetic, written by my_utils.synthetic; it is not the real '
        f'data set. Delete this folder (or point MY_UTILS_DATA elsewhere) to use the real one.\n')


def _labels(n, rng):
    """Balanced labels (n // 10 or n // 10 + 1 per class), shuffled."""
    return rng.permutation(np.arange(n) % 10).astype(np.uint8)


def _shift(images, rng, max_shift):
    """Shift every image (N, H, W[, C]) by a random whole-pixel offset, zero fill."""
    out = np.zeros_like(images)
    h, w = images.shape[1:3]
    dy = rng.integers(-max_shift, max_shift + 1, len(images))
    dx = rng.integers(-max_shift, max_shift + 1, len(images))
    for sy in range(-max_shift, max_shift + 1):  # loop over offsets, not samples
        for sx in range(-max_shift, max_shift + 1):
            sel = (dy == sy) & (dx == sx)
            src = images[sel][:, max(0, -sy):h - max(0, sy), max(0, -sx):w - max(0, sx)]
            out[sel, max(0, sy):h - max(0, -sy), max(0, sx):w - max(0, -sx)] = src
    return out


def _strokes(rng, size=28, n_strokes=3, width=1.6):
    """One class prototype in [0, 1]: a few thick random line segments."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    img = np.zeros((size, size))
    for _ in range(n_strokes):
        (y0, x0), (y1, x1) = rng.uniform(5, size - 6, (2, 2))
        dy, dx = y1 - y0, x1 - x0
        t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / (dy * dy + dx * dx + 1e-9), 0, 1)
        dist = np.hypot(yy - (y0 + t * dy), xx - (x0 + t * dx))
        img = np.maximum(img, np.clip(width + 0.5 - dist, 0, 1))
    return img


def _fake_kmnist_split(n, rng, protos):
    labels = _labels(n, rng)
    imgs = protos[labels] * rng.uniform(0.6, 1.0, (n, 1, 1)) * 255
    imgs = _shift(imgs, rng, 3) + rng.normal(0, 40, imgs.shape)
    return np.clip(imgs, 0, 255).round().astype(np.uint8), labels


def _write_idx(path, array):
    """idx format: magic (0x0800 | ndim, uint8 data), big-endian dims, raw bytes."""
    header = struct.pack('>I', 0x0800 | array.ndim) + struct.pack(f'>{array.ndim}I', *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_fake_kmnist(root, n_train=2000, n_test=500, seed=0):
    """Write fake KMNIST idx files to ``root/KMNIST/raw/`` and return ``Path(root)``.

    The four uncompressed files torchvision's KMNIST reads (it needs no .gz when these
    exist): train-/t10k-images-idx3-ubyte (N, 28, 28) and train-/t10k-labels-idx1-ubyte.
    """
    root = Path(root).expanduser()
    raw = root / 'KMNIST' / 'raw'
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    protos = np.stack([_strokes(rng) for _ in range(10)])
    for split, n in (('train', n_train), ('t10k', n_test)):
        images, labels = _fake_kmnist_split(int(n), rng, protos)
        _write_idx(raw / f'{split}-images-idx3-ubyte', images)
        _write_idx(raw / f'{split}-labels-idx1-ubyte', labels)
    _mark(root / 'KMNIST', 'KMNIST')
    return root


def _fake_cifar_split(n, rng, colors, freqs):
    """Class = a colour plus a stripe orientation/frequency, with shifts and noise."""
    labels = _labels(n, rng)
    yy, xx = np.mgrid[0:32, 0:32] / 32.0
    fy, fx = freqs[labels, 0, None, None], freqs[labels, 1, None, None]
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (fy * yy + fx * xx) + phase)  # (n, 32, 32)
    tint = colors[labels] * rng.uniform(0.7, 1.0, (n, 1)) * 255  # class colour, dimmed
    imgs = (0.35 + 0.5 * stripes[..., None]).astype(np.float32) * tint[:, None, None, :]  # NHWC
    imgs += 20 * rng.standard_normal(imgs.shape, dtype=np.float32)
    return np.clip(imgs, 0, 255).round().astype(np.uint8), labels


def _write_cifar_batch(path, images, labels):
    entry = {'batch_label': f'synthetic {path.name}',
             'labels': [int(v) for v in labels],
             'data': images.transpose(0, 3, 1, 2).reshape(len(images), 3072),  # NHWC -> rows
             'filenames': [f'synthetic_{path.name}_{i}.png' for i in range(len(images))]}
    with open(path, 'wb') as f:
        pickle.dump(entry, f, protocol=2)


def write_fake_cifar10(root, n_train=1000, n_test=500, seed=0):
    """Write a fake ``root/cifar-10-batches-py/`` and return ``Path(root)``.

    Same pickles as the real python version: data_batch_1..5 and test_batch, each a
    dict with 'data' (uint8 (n, 3072), channel-major rows), 'labels', 'filenames',
    'batch_label'; batches.meta with 'label_names'.  Plus the marker file.
    """
    root = Path(root).expanduser()
    folder = root / 'cifar-10-batches-py'
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    colors = rng.uniform(0.3, 1.0, (10, 3))
    freqs = rng.integers(-4, 5, (10, 2)) + rng.uniform(-0.3, 0.3, (10, 2))
    train = _fake_cifar_split(int(n_train), rng, colors, freqs)
    test = _fake_cifar_split(int(n_test), rng, colors, freqs)
    parts = np.array_split(np.arange(int(n_train)), 5)  # the real set has 5 train batches
    for i, rows in enumerate(parts):
        _write_cifar_batch(folder / f'data_batch_{i + 1}', train[0][rows], train[1][rows])
    _write_cifar_batch(folder / 'test_batch', *test)
    meta = {'label_names': CIFAR10_CLASSES, 'num_cases_per_batch': len(parts[0]),
            'num_vis': 3072}
    with open(folder / 'batches.meta', 'wb') as f:
        pickle.dump(meta, f, protocol=2)
    _mark(folder, 'CIFAR-10')
    return root
