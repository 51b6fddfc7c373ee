"""Checks of train_ch6's inputs: each bad input gets one error that says what to do.

The argument checks run before train_ch6 changes anything (weights, device, layout); the batch
checks replace torch's own errors, which come from deep inside the loss (on CUDA only as
'device-side assert triggered', which also ends the process's use of the GPU).
"""

import torch

from .arguments import is_int, is_number


class LabelOutOfRange(ValueError):
    """A label is not a class index 0..num_classes-1 of the model's output."""


def check_num_epochs(num_epochs):
    if not is_int(num_epochs, minimum=1):
        raise ValueError(f'num_epochs must be a whole number >= 1, got {num_epochs!r}')


def check_lr(lr, optimizer):
    if optimizer is None and not (is_number(lr) and lr > 0):
        raise ValueError(f'lr must be a positive number when no optimizer is given, got {lr!r}')


def check_choice(name, value, choices):
    if value not in choices:
        listing = ' or '.join(repr(c) for c in choices)
        raise ValueError(f'{name} must be {listing}, got {value!r}')


# ---------------------------------------------------------------------------------------------
# devices

def available_devices():
    """The devices this machine can train on, as strings: 'cpu', 'cuda:0', ..., 'mps'."""
    names = ['cpu'] + [f'cuda:{i}' for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, 'mps', None) is not None and torch.backends.mps.is_available():
        names.append('mps')
    xpu = getattr(torch, 'xpu', None)
    if xpu is not None and xpu.is_available():
        names += [f'xpu:{i}' for i in range(xpu.device_count())]
    return names


def _not_here(device, why):
    return ValueError(f'device {str(device)!r} {why}; this machine has '
                      f'{", ".join(available_devices())}. Pass device=None (mu.try_gpu() picks '
                      'the best there is) or "cpu"')


def resolve_device(device):
    """A torch.device that exists here (None: try_gpu()); an error naming those that do."""
    from .devices import try_gpu
    if device is None:
        device = try_gpu()
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise _not_here(device, 'is not a device name torch knows') from None
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise _not_here(device, 'was asked for, but CUDA is not available here')
        if device.index is None:  # print cuda:0 like d2l, not a bare cuda
            device = torch.device('cuda', torch.cuda.current_device())
        if device.index >= torch.cuda.device_count():
            raise _not_here(device, 'does not exist')
        return device
    if device.type == 'cpu' or str(device) in available_devices():
        return device
    if device.type in ('mps', 'xpu'):
        raise _not_here(device, 'is not available on this machine')
    try:  # another backend (a plug-in): the only reliable test is to use it
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError, NotImplementedError):
        raise _not_here(device, 'is not available on this machine') from None
    return device


# ---------------------------------------------------------------------------------------------
# data

def check_loader(data_iter, name, num_epochs):
    """An empty loader, or a one-shot iterator used for more than one epoch, before training."""
    try:
        empty = len(data_iter) == 0
    except TypeError:  # a generator or other iterable without len(): checked while iterating
        empty = False
    if empty:
        raise ValueError(f'{name} is empty (it yields no batches); check the data set and '
                         'batch_size (with drop_last=True a batch_size larger than the data '
                         'set leaves nothing)')
    if num_epochs > 1 and iter(data_iter) is data_iter:
        raise ValueError(f'{name} is an iterator ({type(data_iter).__name__}): it is used up '
                         f'after one pass, so epoch 2 would get no data. Pass something that '
                         'can be iterated again, such as a DataLoader or a list of (X, y) '
                         'batches (list(...) of it, if it fits in memory)')


def empty_error(name, epoch=1, batches_before=0):
    if epoch > 1 and batches_before:
        return ValueError(f'{name} yielded no batches in epoch {epoch} after {batches_before} '
                          'in epoch 1: it is used up after one pass (an iterator?). Pass '
                          'something that can be iterated again, such as a DataLoader or a list')
    return ValueError(f'{name} yielded no examples; check the data set and batch_size')


# ---------------------------------------------------------------------------------------------
# batches

def check_inputs(X, y):
    if isinstance(X, torch.Tensor) and X.dtype == torch.uint8:
        raise ValueError('train_ch6: the inputs are uint8 (pixel values 0..255) but the model '
                         'computes in float; convert them, e.g. X.float() / 255 '
                         '(ToTensor does this)')
    if isinstance(y, torch.Tensor) and y.dim() == 1 and y.dtype.is_floating_point:
        raise ValueError(f'train_ch6: the labels are {y.dtype} numbers, but cross-entropy '
                         'needs class indices (int64); convert them with y.long()')


def check_output(y_hat, y, where):
    """Catch a wrongly shaped model output before cross-entropy gives its own, harder error."""
    if not isinstance(y_hat, torch.Tensor):
        raise TypeError(f'{where}: the model returned {type(y_hat).__name__}, expected a tensor '
                        'of class scores with shape (batch, classes)')
    batch = y.shape[0] if y.dim() > 0 else 1
    if y_hat.dim() == 2 and y_hat.shape[0] == batch:
        return
    got = tuple(y_hat.shape)
    if y_hat.dim() == 1:
        hint = ('one number per example: was the class dimension averaged or summed away '
                '(e.g. a mean over the last dimension)?')
    elif y_hat.dim() > 2:
        hint = ('reduce the extra dimensions before the classifier output, e.g. a mean over the '
                'patches (MeanPool(1)) or nn.Flatten()')
    else:
        hint = (f'the first dimension must be the batch ({batch} labels here): does a reshape '
                'or view mix up the batch dimension?')
    raise ValueError(f'{where}: the model output has shape {got}, but (batch, classes) = '
                     f'({batch}, num_classes) is expected; {hint}')


def class_indices(y_hat, y):
    """True when y holds one class index per row of y_hat (what the label checks look at)."""
    return (y.dim() == 1 and not y.dtype.is_floating_point and y.numel() > 0
            and y_hat.dim() == 2)


def label_error(low, high, num_classes, shape):
    """The error for labels outside 0..num_classes-1 (low, high: the labels' range)."""
    if high >= num_classes:
        return LabelOutOfRange(
            f'the labels go up to {high}, but the model outputs {num_classes} class scores per '
            f'example (output shape {tuple(shape)}); its last layer needs at least {high + 1} '
            'outputs, one per class')
    return LabelOutOfRange(
        f'the labels go down to {low}, but class indices start at 0 (labels 0..'
        f'{num_classes - 1} for the model\'s {num_classes} outputs); map them, e.g. y - y.min()')


def check_labels(y_hat, y, ignore_index=None, label_range=None):
    """The first batch's labels against the output width: one host read. label_range: the
    (lowest, highest) label of the whole loader, when it knows it; checked too (no read)."""
    if not class_indices(y_hat, y):
        return
    if label_range is not None:
        low, high = label_range
        if low < 0 or high >= y_hat.shape[1]:
            raise label_error(low, high, y_hat.shape[1], y_hat.shape)
    # An ignored label (CrossEntropyLoss's ignore_index, -100) counts as class 0, always valid.
    valid = y if ignore_index is None else torch.where(y == ignore_index, 0, y)
    low, high = torch.stack((valid.min(), valid.max())).tolist()
    if low < 0 or high >= y_hat.shape[1]:
        raise label_error(low, high, y_hat.shape[1], y_hat.shape)


def channels_last_view_error():
    return RuntimeError('train_ch6(channels_last=True): the model calls .view() on a tensor in '
                        'the channels-last layout, which .view() cannot reshape. Use .reshape() '
                        'or nn.Flatten() in its forward, or train with channels_last=False.')
