"""Small layers that let a notebook write a patch/mixer model as one nn.Sequential."""

from torch import nn

from .arguments import is_int


def _check_dim(value, name, allow_tuple=False):
    ok = is_int(value)
    if allow_tuple and isinstance(value, (tuple, list)):
        ok = len(value) > 0 and all(is_int(v) for v in value)
        value = tuple(int(v) for v in value) if ok else value
    if not ok:
        kind = 'an int or a tuple of ints' if allow_tuple else 'an int'
        raise TypeError(f'{name} must be {kind}, got {value!r}')
    return value if isinstance(value, tuple) else int(value)


class Transpose(nn.Module):
    """Swap two dimensions: x.transpose(dim0, dim1), e.g. (batch, patches, channels) <->
    (batch, channels, patches) between a token MLP and a channel MLP."""

    def __init__(self, dim0, dim1):
        super().__init__()
        self.dim0 = _check_dim(dim0, 'dim0')
        self.dim1 = _check_dim(dim1, 'dim1')

    def forward(self, x):
        try:
            return x.transpose(self.dim0, self.dim1)
        except IndexError as err:  # say which layer and what it got, not only torch's range
            raise IndexError(f'{self!r} got an input of shape {tuple(x.shape)}: {err}') from None

    def extra_repr(self):
        return f'dim0={self.dim0}, dim1={self.dim1}'


class MeanPool(nn.Module):
    """Average over `dim` (an int or a tuple), e.g. over the patches before the classifier."""

    def __init__(self, dim, keepdim=False):
        super().__init__()
        self.dim = _check_dim(dim, 'dim', allow_tuple=True)
        self.keepdim = bool(keepdim)

    def forward(self, x):
        try:
            return x.mean(dim=self.dim, keepdim=self.keepdim)
        except IndexError as err:
            raise IndexError(f'{self!r} got an input of shape {tuple(x.shape)}: {err}') from None

    def extra_repr(self):
        return f'dim={self.dim}' + (', keepdim=True' if self.keepdim else '')


__all__ = ['Transpose', 'MeanPool']
