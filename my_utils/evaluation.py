"""Accuracy and its helpers: counting correct predictions on the device, in eval mode, and a
batch's loss as a sum and a mean whatever the loss's reduction (chapters 3 and 6 share them)."""
import contextlib

import torch
from torch import nn

from .checks import check_output, empty_error


def _module_device(net):
    """The device of the net's first parameter (or buffer); None for plain functions."""
    if not isinstance(net, nn.Module):
        return None
    for tensor in net.parameters():
        return tensor.device
    for tensor in net.buffers():
        return tensor.device
    return None


def _to(x, device):
    # non_blocking overlaps a host-to-device copy with compute and is a no-op for data already
    # there; a copy *to* the CPU must block, or the CPU could read it before it has arrived.
    if device is None:
        return x
    if isinstance(x, (list, tuple)):
        return type(x)(_to(item, device) for item in x)
    return x.to(device, non_blocking=device.type != 'cpu')


def _batch_size(y):
    return y.shape[0] if y.dim() > 0 else 1


def _num_correct(y_hat, y):
    """Number of correct predictions as a tensor on y's device (no host sync)."""
    if y_hat.dim() > 1 and y_hat.shape[1] > 1:
        if y.dim() > 1 and y.shape == y_hat.shape:  # one-hot or soft labels
            y = y.argmax(dim=1)
        y_hat = y_hat.argmax(dim=1)
    return (y_hat.type(y.dtype) == y).sum()  # an int64 count whatever the label dtype


def _loss_sum_and_mean(l, reduction, n):
    """(sum over the batch, mean over the batch) of a loss given per example or reduced."""
    if l.dim() == 0:
        if reduction == 'sum':
            return l, l / n
        return l * n, l  # 'mean' (or a plain function returning the mean)
    return l.sum(), l.mean()


@contextlib.contextmanager
def _evaluating(net):
    """Eval mode inside, then every submodule back in the mode it had (a frozen BN stays frozen)."""
    if not isinstance(net, nn.Module):
        yield
        return
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _count_correct(net, data_iter, device, name, autocast=contextlib.nullcontext,
                   check=False, mark_step=False):
    """(correct, examples) over data_iter, counted on the device: one host sync at the end."""
    correct, count = None, 0
    with _evaluating(net), torch.no_grad():
        for X, y in data_iter:
            X, y = _to(X, device), _to(y, device)
            if mark_step:
                torch.compiler.cudagraph_mark_step_begin()
            with autocast():
                y_hat = net(X)
            if check:
                check_output(y_hat, y, name)
            c = _num_correct(y_hat, y)
            correct = c if correct is None else correct + c
            count += _batch_size(y)
    if count == 0:
        raise empty_error(name)
    return float(correct), count


def accuracy(y_hat, y):
    """Compute the number of correct predictions (a float, as in d2l)."""
    return float(_num_correct(y_hat, y))


def evaluate_accuracy(net, data_iter):
    """Compute the accuracy for a model on a dataset (no_grad, eval mode, on the net's device)."""
    correct, count = _count_correct(net, data_iter, _module_device(net), 'data_iter')
    return correct / count


def evaluate_accuracy_gpu(net, data_iter, device=None):
    """Compute the accuracy for a model on a dataset using a GPU (or the net's device)."""
    device = _module_device(net) if device is None else torch.device(device)
    correct, count = _count_correct(net, data_iter, device, 'data_iter')
    return correct / count
