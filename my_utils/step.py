"""The fast path's step: one optimizer step whose metrics stay on the device.

train_ch6 takes it for every batch, and so does benchmarks/train_speed.py: EpochTotals sums
the loss and the correct predictions on the device, so a step reads nothing back.
"""
import contextlib

import torch
from torch import nn

from .checks import (LabelOutOfRange, check_inputs, check_labels, check_output, class_indices,
                     label_error)
from .evaluation import _batch_size, _loss_sum_and_mean, _num_correct

__all__ = ['train_step', 'EpochTotals']

_CLASS_LOSSES = (nn.CrossEntropyLoss, nn.NLLLoss)


class EpochTotals:
    """A training epoch's summed loss and correct predictions, kept on the device.

    Adding a batch costs no host sync; `read()` is one sync. `seen` (the number of examples)
    and `batches` are counted on the host. With `watch_labels` it also keeps the labels' range
    on the device, and `read()` raises LabelOutOfRange if a label was outside the classes.
    """

    def __init__(self, device):
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.seen = self.batches = 0
        self.num_classes = None  # the output's width, once a batch of class scores was added
        self._labels = None  # (lowest, highest, first bad batch or -1) on the device

    def add(self, loss_sum, y_hat, y):
        """Add one batch: its summed loss and its predictions."""
        with torch.no_grad():
            self.loss_sum.add_(loss_sum.float())
            self.correct.add_(_num_correct(y_hat, y))
        self.seen += _batch_size(y)
        self.batches += 1
        if y_hat.dim() == 2:
            self.num_classes = y_hat.shape[1]

    def watch_labels(self, y, num_classes, ignore_index=None):
        """Note the labels' range on the device; returns labels the loss can take.

        For accelerators, where an out-of-range label in the loss is a device-side assert that
        ends the process's use of the GPU: the labels are clamped into range (a no-op for good
        ones), and the next read() raises if any was outside. train_ch6 uses it in the first
        epoch only, for labels that come to it already on the device (labelguard.py).
        """
        with torch.no_grad():
            valid = y if ignore_index is None else torch.where(y == ignore_index, 0, y)
            low, high = valid.min(), valid.max()
            bad = (low < 0) | (high >= num_classes)
            if self._labels is None:
                self._labels = [low, high, torch.full_like(low, -1)]
            lowest, highest, first = self._labels
            first = torch.where(bad & (first < 0), self.batches + 1, first)
            self._labels = [torch.minimum(lowest, low), torch.maximum(highest, high), first]
            self._num_classes, self._shape = num_classes, (y.shape[0], num_classes)
            safe = valid.clamp(0, num_classes - 1)
            return safe if ignore_index is None else torch.where(y == ignore_index, y, safe)

    def read(self):
        """(mean loss, accuracy) over the examples added so far: one host sync."""
        values = [self.loss_sum, self.correct.float()]
        if self._labels is not None:
            values += [v.float() for v in self._labels]
        values = torch.stack(values).tolist()
        if self._labels is not None and values[4] >= 0:
            low, high, first = (int(v) for v in values[2:])
            err = label_error(low, high, self._num_classes, self._shape)
            raise LabelOutOfRange(f'batch {first}: {err}')
        seen = max(self.seen, 1)
        return values[0] / seen, values[1] / seen


def _loss(loss, y_hat, y):
    """loss(y_hat, y); a label out of range is named instead of torch's IndexError (CPU)."""
    try:
        return loss(y_hat, y)
    except IndexError:
        if class_indices(y_hat, y):
            check_labels(y_hat, y, getattr(loss, 'ignore_index', None))  # raises if so
        raise


def train_step(net, X, y, loss, optimizer, totals, *, autocast=contextlib.nullcontext,
               mark_step=False, check=False, label_range=None):
    """One optimizer step on a batch that is already on the device; adds the batch's loss and
    correct predictions to `totals` (an EpochTotals) without reading anything back.

    The mean loss over the batch is backpropagated whatever the loss's reduction. mark_step:
    the net is compiled with CUDA graphs. check: also check the inputs and labels (train_ch6
    does it on its first batch; the label check costs one sync), and label_range, the
    (lowest, highest) label of the whole loader when it is known (DeviceLoader.label_range).
    It does no label work of its own on the other batches: train_ch6 checks labels once per
    loader (labelguard.py). On the CPU a label out of range raises LabelOutOfRange (a
    ValueError), never torch's IndexError.
    """
    if mark_step:
        torch.compiler.cudagraph_mark_step_begin()
    if check:
        check_inputs(X, y)
    with autocast():
        y_hat = net(X)
        check_output(y_hat, y, 'train_ch6')
        if check and isinstance(loss, _CLASS_LOSSES):
            check_labels(y_hat, y, getattr(loss, 'ignore_index', None), label_range)
        l = _loss(loss, y_hat, y)
    l_sum, l_mean = _loss_sum_and_mean(l, getattr(loss, 'reduction', 'mean'), _batch_size(y))
    # Before backward: a CUDA-graph output may be overwritten by the next replay.
    totals.add(l_sum, y_hat, y)
    optimizer.zero_grad(set_to_none=True)
    l_mean.backward()
    optimizer.step()
