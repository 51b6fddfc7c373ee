"""Tests for my_utils.layers: Transpose and MeanPool."""
import pytest
import torch
from torch import nn

import my_utils as d2l
from my_utils.layers import MeanPool, Transpose


def test_transpose_swaps_and_prints_its_dims():
    x = torch.randn(2, 3, 5)
    layer = Transpose(1, 2)
    assert torch.equal(layer(x), x.transpose(1, 2))
    assert repr(layer) == 'Transpose(dim0=1, dim1=2)'
    assert torch.equal(Transpose(-1, -2)(x), x.transpose(1, 2))


def test_meanpool_averages_and_prints_its_dim():
    x = torch.randn(2, 3, 5)
    assert torch.equal(MeanPool(1)(x), x.mean(1))
    assert repr(MeanPool(1)) == 'MeanPool(dim=1)'
    assert MeanPool(1, keepdim=True)(x).shape == (2, 1, 5)
    assert repr(MeanPool(1, keepdim=True)) == 'MeanPool(dim=1, keepdim=True)'
    assert torch.allclose(MeanPool((1, 2))(x), x.mean((1, 2)))
    assert repr(MeanPool([1, 2])) == 'MeanPool(dim=(1, 2))'


def test_layers_in_a_sequential_mixer_and_print():
    net = nn.Sequential(nn.Linear(4, 8), Transpose(1, 2), nn.Linear(6, 6), Transpose(1, 2),
                        MeanPool(1), nn.Linear(8, 10))
    assert net(torch.randn(2, 6, 4)).shape == (2, 10)
    text = str(net)
    assert '(1): Transpose(dim0=1, dim1=2)' in text and '(4): MeanPool(dim=1)' in text
    assert sum(p.numel() for p in net.parameters()) == 4 * 8 + 8 + 6 * 6 + 6 + 8 * 10 + 10


def test_reexported_by_the_package():
    assert d2l.Transpose is Transpose and d2l.MeanPool is MeanPool


@pytest.mark.parametrize('args', [(1.5, 2), ('1', 2), (1, None), (True, 2)])
def test_transpose_bad_dims(args):
    with pytest.raises(TypeError, match='must be an int'):
        Transpose(*args)


@pytest.mark.parametrize('dim', [1.0, 'patches', (), (1, 'a'), None])
def test_meanpool_bad_dim(dim):
    with pytest.raises(TypeError, match='dim must be an int or a tuple of ints'):
        MeanPool(dim)


def test_out_of_range_dims_name_the_layer_and_shape():
    with pytest.raises(IndexError, match=r'Transpose\(dim0=1, dim1=3\) got an input of shape '
                                         r'\(2, 3\)'):
        Transpose(1, 3)(torch.randn(2, 3))
    with pytest.raises(IndexError, match=r'MeanPool\(dim=2\) got an input of shape \(2, 3\)'):
        MeanPool(2)(torch.randn(2, 3))
