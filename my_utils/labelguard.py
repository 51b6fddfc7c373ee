"""Labels checked once per loader on accelerators, so that train_step does no label work.

On a GPU an out-of-range label reaching the loss is a device-side assert that also ends the
process's use of the GPU, so the labels must be checked before the loss sees them. On the CPU
the loss raises an IndexError itself, which train_ch6 turns into a named error: no guard there.

Where the check happens depends on where the labels are:
- a DeviceLoader read its labels' range when it was built: that range is checked with the
  first batch, and nothing after it;
- labels on the host (a DataLoader's batches) are checked there, before they move: host work
  only, no device operation and no sync;
- labels already on the device from another loader are watched on the device in the first
  epoch only (clamped for the loss, their range read with the epoch's totals); the later epochs
  go over the same labels again.
The first batch is always checked in full by train_step(check=True).
"""
import torch

from .checks import label_error


def loader_label_range(data_iter):
    """(lowest, highest) label of the whole loader when it knows it (a DeviceLoader), else None."""
    value = getattr(data_iter, 'label_range', None)
    return tuple(value) if value is not None else None


def check_host_labels(y, num_classes, ignore_index=None):
    """Labels on the host against the model's number of classes; raises LabelOutOfRange."""
    if y.dim() != 1 or y.dtype.is_floating_point or y.numel() == 0:
        return
    valid = y if ignore_index is None else y[y != ignore_index]
    if valid.numel() == 0:
        return
    low, high = int(valid.min()), int(valid.max())
    if low < 0 or high >= num_classes:
        raise label_error(low, high, num_classes, (y.shape[0], num_classes))


class LabelGuard:
    """What train_ch6 does with each batch's labels before its step (see the module's text)."""

    def __init__(self, train_iter, device, loss, class_losses):
        self.ignore_index = getattr(loss, 'ignore_index', None)
        # train_step(check=True) checks a loader's range with batch 1 for the losses whose
        # labels are class indices; for other losses it is watched like any device labels.
        self.label_range = (loader_label_range(train_iter) if isinstance(loss, class_losses)
                            else None)
        # Only an accelerator needs a guard; a known range needs none after batch 1.
        self.active = device.type != 'cpu' and self.label_range is None
        self.num_classes = None  # learnt from the first step's output

    def learn(self, totals):
        """After the first step: the output's width, as EpochTotals noted it (host metadata)."""
        self.num_classes = totals.num_classes

    def labels_for_step(self, y, totals, epoch):
        """The labels to train on: y itself, or (device labels in epoch 1) clamped and watched."""
        if not self.active or self.num_classes is None or not isinstance(y, torch.Tensor):
            return y
        if y.device.type == 'cpu':
            check_host_labels(y, self.num_classes, self.ignore_index)
            return y
        if epoch == 1 and y.dim() == 1 and not y.dtype.is_floating_point:
            return totals.watch_labels(y, self.num_classes, self.ignore_index)
        return y
