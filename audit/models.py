"""The five coursework networks: the one definition the audit trains and the benchmark times.

Each lesson builds its network cell by cell; tests/test_lessons.py checks that the lesson's
network equals the one built here (same parameters, same outputs). Options are the readings
the audit trains (01's patch size 4, 02's TF32 layers, 04's batch norm over rows); 03's `width`
and 05's `hidden` exist for the benchmark and keep the report's value by default.
"""
from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from my_utils.layers import MeanPool, Transpose

__all__ = ['net_01', 'net_02', 'net_03', 'net_04', 'net_05', 'Residual', 'MixedConvBlock',
           'Stage', 'Patches', 'FeatureBatchNorm', 'TF32Linear', 'to_tf32']


# ---------------------------------------------------------------- 01: conv-stem mixer

class Residual(nn.Module):
    """x + fn(x) (01's residual row; the report's model has none)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return x + self.fn(x)


def net_01(patch_size=2, residual=False, channels=20, mlp_dim=160, n_blocks=3):
    """Conv patch stem, `n_blocks` token/channel MLP blocks, mean over patches, Linear."""
    if 28 % patch_size:
        raise ValueError(f'patch_size must divide 28, got {patch_size}')
    n = (28 // patch_size) ** 2

    def block():
        token = nn.Sequential(nn.LayerNorm(channels), Transpose(1, 2), nn.Linear(n, mlp_dim),
                              nn.ReLU(), nn.Linear(mlp_dim, n), Transpose(1, 2))
        channel = nn.Sequential(nn.LayerNorm(channels), nn.Linear(channels, mlp_dim), nn.ReLU(),
                                nn.Linear(mlp_dim, channels))
        if residual:
            token, channel = Residual(token), Residual(channel)
        return nn.Sequential(OrderedDict(token_mlp=token, channel_mlp=channel))

    return nn.Sequential(OrderedDict(
        stem=nn.Sequential(nn.Conv2d(1, channels, patch_size, stride=patch_size),
                           nn.Flatten(start_dim=2), Transpose(1, 2)),
        backbone=nn.Sequential(*(block() for _ in range(n_blocks))),
        classifier=nn.Sequential(MeanPool(1), nn.Linear(channels, 10))))


# ---------------------------------------------------------------- 02: two-MLP unfold (seed 001)

def net_02(dropout=None, linear=nn.Linear):
    """14x14 unfold -> MLP over pixels -> transpose -> MLP over the 4 patches -> mean.

    dropout=None is the report's model (its Dropout was never applied); linear=TF32Linear is
    the reading that its GPU multiplied in TF32."""
    mlp1 = [linear(196, 784), nn.ReLU(), linear(784, 200)]
    if dropout:
        mlp1.append(nn.Dropout(dropout))
    return nn.Sequential(OrderedDict(
        stem=nn.Sequential(nn.Unfold(kernel_size=14, stride=14), Transpose(1, 2)),
        mlp1=nn.Sequential(*mlp1),
        swap=Transpose(1, 2),
        mlp2=nn.Sequential(linear(4, 64), nn.ReLU(), linear(64, 10)),
        head=MeanPool(1)))


def to_tf32(t):
    """Keep the sign, the 8 exponent bits and the first 10 mantissa bits (what a tensor core
    reads of a float32 in TF32 mode); the low 13 bits are dropped, rounding towards zero."""
    return (t.contiguous().view(torch.int32) & -0x2000).view(torch.float32)


class TF32Product(torch.autograd.Function):
    """x @ w.T from TF32 factors, summed in float32; the backward's two products likewise."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return to_tf32(x) @ to_tf32(w).T

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        g = to_tf32(grad)
        grad_w = g.reshape(-1, g.shape[-1]).T @ to_tf32(x).reshape(-1, x.shape[-1])
        return g @ to_tf32(w), grad_w


class TF32Linear(nn.Linear):
    """nn.Linear multiplying in TF32 on any device (a CPU has no switch for it)."""

    def forward(self, x):
        return TF32Product.apply(x, self.weight) + self.bias


# ---------------------------------------------------------------- 03: CIFAR-10 mixed-conv blocks

class MixedConvBlock(nn.Module):
    """O = sum_k a_k Conv_k(X), a = softmax(MLP(spatial mean of X)) per image."""

    def __init__(self, c_in, c_out, kernel_sizes=(5, 5, 5, 3, 3, 3), hidden=512):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(c_in, c_out, k, padding=k // 2)
                                   for k in kernel_sizes)
        self.mlp = nn.Sequential(nn.Linear(c_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, len(kernel_sizes)),
                                 nn.Softmax(dim=1))

    def forward(self, x):
        a = self.mlp(x.mean(dim=(2, 3)))  # (batch, K)
        return sum(a[:, k, None, None, None] * conv(x) for k, conv in enumerate(self.convs))


class Stage(nn.Module):
    """One numbered block of the report: MixedConvBlock -> BatchNorm (-> + input) -> ReLU."""

    def __init__(self, c_in, c_out, residual=False):
        super().__init__()
        if residual and c_in != c_out:
            raise ValueError(f'a residual needs c_in == c_out, got {c_in} and {c_out}')
        self.block = MixedConvBlock(c_in, c_out)
        self.bn = nn.BatchNorm2d(c_out)
        self.residual = residual

    def forward(self, x):
        y = self.bn(self.block(x))
        return F.relu(y + x if self.residual else y)

    def extra_repr(self):
        return f'residual={self.residual}'


def net_03(dropout=0.2, width=32):
    """7 stages in 3 groups (width, 2*width, 4*width channels), pooling and dropout after
    each group, then global average pooling and an MLP 1024-512-10.

    width=32 is the report's model; the benchmark's CPU variant uses 16 (same structure, a
    quarter of the convolution work)."""
    c1, c2, c3 = width, 2 * width, 4 * width
    backbone = nn.Sequential(
        nn.Sequential(Stage(3, c1), Stage(c1, c1), nn.AvgPool2d(2), nn.Dropout(dropout)),
        nn.Sequential(Stage(c1, c2), Stage(c2, c2, residual=True),
                      nn.MaxPool2d(2), nn.Dropout(dropout)),
        nn.Sequential(Stage(c2, c3), Stage(c3, c3, residual=True), Stage(c3, c3, residual=True),
                      nn.MaxPool2d(2), nn.Dropout(dropout)))
    classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c3, 1024),
                               nn.ReLU(), nn.Linear(1024, 512), nn.ReLU(), nn.Linear(512, 10))
    return nn.Sequential(backbone, classifier)


# ---------------------------------------------------------------- 04: patch stem + two MLPs

class Patches(nn.Module):
    """(B, C, H, W) -> (B, patches, C*size*size): non-overlapping patches, row by row."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x):
        b, c, h, w = x.shape
        p = self.size
        x = x.unfold(2, p, p).unfold(3, p, p)  # (B, C, H/p, W/p, p, p)
        return x.permute(0, 2, 3, 1, 4, 5).reshape(b, (h // p) * (w // p), c * p * p)

    def extra_repr(self):
        return f'size={self.size}'


class FeatureBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the last dimension of a (batch, rows, features) tensor."""

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def net_04(bn=False, dropout=0.0, bn_over='features'):
    """The report's first model is net_04(); its final set-up is net_04(bn=True, dropout=0.01).

    bn_over='rows' is a reading of step 8: BatchNorm1d over dimension 1 of (batch, rows, features)."""
    def linear(i, o, rows):  # a Linear layer, and a batch norm after it when bn
        if not bn:
            return [nn.Linear(i, o)]
        return [nn.Linear(i, o), FeatureBatchNorm(o) if bn_over == 'features' else nn.BatchNorm1d(rows)]

    def act():  # fresh modules for each MLP
        return [nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])

    mlp1 = nn.Sequential(Transpose(1, 2), *linear(4, 128, 256), *act(), *linear(128, 64, 256),
                         Transpose(1, 2))
    mlp2 = nn.Sequential(*linear(256, 32, 64), *act(), *linear(32, 16, 64))
    return nn.Sequential(OrderedDict(
        stem=nn.Sequential(Patches(14), *linear(196, 256, 4)),
        backbone=nn.Sequential(mlp1, mlp2),
        classifier=nn.Sequential(MeanPool(1), nn.Linear(16, 10))))


# ---------------------------------------------------------------- 05: KMNIST patch mixer

def net_05(hidden=512, dropout=0.1):
    """4x4 patches -> Linear(16, hidden) -> BatchNorm; 2 blocks of token MLP 49-512-49 and
    channel MLP hidden-512-hidden (the last ends at 16); mean over patches; Linear(16, 10)."""
    def block(out_features):
        return nn.Sequential(
            Transpose(1, 2), nn.Linear(49, 512), nn.ReLU(), nn.Linear(512, 49),
            nn.Dropout(dropout), Transpose(1, 2),
            nn.Linear(hidden, 512), nn.ReLU(), nn.Linear(512, out_features), nn.Dropout(dropout))

    stem = nn.Sequential(nn.Unfold(kernel_size=4, stride=4), Transpose(1, 2),
                         nn.Linear(16, hidden), Transpose(1, 2), nn.BatchNorm1d(hidden),
                         Transpose(1, 2))
    return nn.Sequential(stem, nn.Sequential(block(hidden), block(16)),
                         nn.Sequential(MeanPool(1), nn.Linear(16, 10)))
