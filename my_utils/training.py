"""Training loops: d2l's chapter 3 and 6 helpers, fixed, and a fast `train_ch6` returning a History.

The d2l names, signatures and printed lines are kept, so book code runs unchanged with
`import my_utils as d2l`. What differs from d2l v0.14 (each one is tested):

- evaluation runs under `torch.no_grad()` in eval mode and puts every module back in the
  mode it was in; the data follow the net to its device;
- `train_epoch_ch3` takes a loss with reduction 'none' or 'mean' with either a torch
  optimizer (the mean is backpropagated) or a d2l updater such as `sgd(params, lr, batch_size)`
  (the sum is backpropagated and `updater(batch_size)` called, as d2l does);
- `train_ch3` does not assert on the results;
- `train_ch6` plots once per epoch (no ZeroDivisionError with fewer than 5 batches), keeps its
  metrics on the device (one host sync per epoch), stops on a non-finite loss, survives
  Ctrl-C, and returns a `History`.
"""
import contextlib
import dataclasses
import math
import numbers
import os
import shutil
import sys
import time

import torch
from torch import nn

from .devices import try_gpu
from .plotting import Animator
from .utils import Timer


# ---------------------------------------------------------------------------------------------
# small helpers

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


def _check_output(y_hat, y, where):
    """Catch a wrongly shaped model output before cross-entropy gives its own, harder error."""
    if not isinstance(y_hat, torch.Tensor):
        raise TypeError(f'{where}: the model returned {type(y_hat).__name__}, expected a tensor '
                        'of class scores with shape (batch, classes)')
    batch = _batch_size(y)
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


def _check_first_batch(X, y):
    if isinstance(X, torch.Tensor) and X.dtype == torch.uint8:
        raise ValueError('train_ch6: the inputs are uint8 (pixel values 0..255) but the model '
                         'computes in float; convert them, e.g. X.float() / 255 '
                         '(ToTensor does this)')


def _check_labels(y_hat, y):
    if y.dim() == 1 and y.dtype.is_floating_point:
        raise ValueError(f'train_ch6: the labels are {y.dtype} numbers, but cross-entropy '
                         'needs class indices (int64); convert them with y.long()')
    if y.dim() != 1 or y.numel() == 0:
        return  # class probabilities, or not class indices at all: the loss checks those
    top = int(y.max())
    if top >= y_hat.shape[1]:
        raise ValueError(f'train_ch6: the labels go up to {top}, but the model outputs '
                         f'{y_hat.shape[1]} class scores per example (output shape '
                         f'{tuple(y_hat.shape)}); its last layer needs at least {top + 1} '
                         'outputs, one per class')


def _loss_sum_and_mean(l, reduction, n):
    """(sum over the batch, mean over the batch) of a loss given per example or reduced."""
    if l.dim() == 0:
        if reduction == 'sum':
            return l, l / n
        return l * n, l  # 'mean' (or a plain function returning the mean)
    return l.sum(), l.mean()


def _check_not_empty(data_iter, name):
    try:
        empty = len(data_iter) == 0
    except TypeError:  # a generator or other iterable without len(): checked while iterating
        return
    if empty:
        raise ValueError(f'{name} is empty (it yields no batches); check the data set and '
                         'batch_size (with drop_last=True a batch_size larger than the data '
                         'set leaves nothing)')


def _empty_error(name):
    return ValueError(f'{name} yielded no examples; check the data set and batch_size')


# ---------------------------------------------------------------------------------------------
# chapter 3

def accuracy(y_hat, y):
    """Compute the number of correct predictions (a float, as in d2l)."""
    return float(_num_correct(y_hat, y))


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
                _check_output(y_hat, y, name)
            c = _num_correct(y_hat, y)
            correct = c if correct is None else correct + c
            count += _batch_size(y)
    if count == 0:
        raise _empty_error(name)
    return float(correct), count


def evaluate_accuracy(net, data_iter):
    """Compute the accuracy for a model on a dataset (no_grad, eval mode, on the net's device)."""
    correct, count = _count_correct(net, data_iter, _module_device(net), 'data_iter')
    return correct / count


def train_epoch_ch3(net, train_iter, loss, updater):
    """Train a model for one epoch; returns (mean train loss, train accuracy).

    `updater` is a torch optimizer (the batch mean of the loss is backpropagated) or a d2l
    updater called as `updater(batch_size)` (the batch sum is backpropagated, as d2l does, so
    `sgd(params, lr, batch_size)` divides it back to a mean). `loss` may return per-example
    losses (reduction='none', d2l's own losses) or their mean.
    """
    if isinstance(net, nn.Module):
        net.train()
    device = _module_device(net)
    reduction = getattr(loss, 'reduction', 'mean')
    is_optimizer = isinstance(updater, torch.optim.Optimizer)
    loss_sum, correct, count = 0.0, 0.0, 0
    for X, y in train_iter:
        X, y = _to(X, device), _to(y, device)
        y_hat = net(X)
        l = loss(y_hat, y)
        n = _batch_size(y)
        l_sum, l_mean = _loss_sum_and_mean(l, reduction, n)
        if is_optimizer:
            updater.zero_grad()
            l_mean.backward()
            updater.step()
        else:
            l_sum.backward()
            updater(n)
        # Summed as tensors and read once at the end: no host sync per batch.
        loss_sum = loss_sum + l_sum.detach()
        correct = correct + _num_correct(y_hat.detach(), y)
        count += n
    if count == 0:
        raise _empty_error('train_iter')
    return float(loss_sum) / count, float(correct) / count


def _check_num_epochs(num_epochs):
    if (isinstance(num_epochs, bool) or not isinstance(num_epochs, numbers.Integral)
            or num_epochs < 1):
        raise ValueError(f'num_epochs must be a whole number >= 1, got {num_epochs!r}')


def train_ch3(net, train_iter, test_iter, loss, num_epochs, updater, *, animate=True,
              verbose=False):
    """Train a model (chapter 3). Unlike d2l it asserts nothing about the results.

    verbose=True prints the final `loss ..., train acc ..., test acc ...` line.
    """
    _check_num_epochs(num_epochs)
    animator = None
    if animate:
        animator = Animator(xlabel='epoch', xlim=[1, max(num_epochs, 2)], ylim=[0.3, 0.9],
                            legend=['train loss', 'train acc', 'test acc'])
    for epoch in range(num_epochs):
        train_metrics = train_epoch_ch3(net, train_iter, loss, updater)
        test_acc = evaluate_accuracy(net, test_iter)
        if animator is not None:
            animator.add(epoch + 1, train_metrics + (test_acc,))
    train_loss, train_acc = train_metrics
    if verbose:
        print(f'loss {train_loss:.3f}, train acc {train_acc:.3f}, test acc {test_acc:.3f}')


def predict_ch3(net, test_iter, n=6):
    """Predict labels (chapter 3) and show the first n images with true and predicted labels."""
    from .datasets import get_fashion_mnist_labels  # here, so training.py does not need datasets.py
    from .plotting import show_images
    for X, y in test_iter:
        break
    else:
        raise _empty_error('test_iter')
    with _evaluating(net), torch.no_grad():
        preds = net(_to(X, _module_device(net))).argmax(dim=1)
    n = min(n, len(y))
    trues = get_fashion_mnist_labels(y[:n].cpu())
    preds = get_fashion_mnist_labels(preds[:n].cpu())
    titles = [true + '\n' + pred for true, pred in zip(trues, preds)]
    images = X[:n].detach().cpu()
    side = math.isqrt(images[0].numel()) if images.dim() == 2 else 0
    if side and side * side == images[0].numel():  # flattened grey images
        images = images.reshape(n, side, side)
    show_images(images, 1, n, titles=titles)


def evaluate_accuracy_gpu(net, data_iter, device=None):
    """Compute the accuracy for a model on a dataset using a GPU (or the net's device)."""
    device = _module_device(net) if device is None else torch.device(device)
    correct, count = _count_correct(net, data_iter, device, 'data_iter')
    return correct / count


# ---------------------------------------------------------------------------------------------
# weight initialisation

_INIT_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
               nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _xavier(m):
    nn.init.xavier_uniform_(m.weight)  # d2l's train_ch6: the bias keeps PyTorch's default


def _xavier_normal(m):
    nn.init.xavier_normal_(m.weight)


def _kaiming(m):
    nn.init.kaiming_normal_(m.weight, nonlinearity='relu')


def _normal(m):
    nn.init.normal_(m.weight, mean=0.0, std=1.0)
    if m.bias is not None:
        nn.init.zeros_(m.bias)


_INITS = {'xavier': _xavier, 'xavier_uniform': _xavier, 'xavier_normal': _xavier_normal,
          'kaiming': _kaiming, 'kaiming_normal': _kaiming, 'he': _kaiming, 'normal': _normal}
_INIT_HELP = ("'xavier' (xavier_uniform_), 'xavier_normal', 'kaiming' (kaiming_normal_, relu), "
              "'normal' (N(0, 1) weights, zero bias), None (keep the model's own), "
              "or a function applied with net.apply")


def init_weights(net, init='xavier'):
    """Initialise the weights of every Linear and Conv layer of `net`; returns net.

    init: 'xavier' (d2l's train_ch6: xavier_uniform_ weights, bias untouched), 'xavier_normal',
    'kaiming' (kaiming_normal_ for ReLU), 'normal' (N(0, 1) weights, zero bias), None (keep the
    model's own), or a function applied to every module with `net.apply(init)`.
    Only 'normal' changes the biases.
    """
    if init is None:
        return net
    if callable(init):
        net.apply(init)
        return net
    if not isinstance(init, str):
        raise TypeError(f'init must be one of {_INIT_HELP}; got {type(init).__name__} {init!r}')
    fn = _INITS.get(init.lower())
    if fn is None:
        raise ValueError(f'unknown init {init!r}; use one of {_INIT_HELP}')
    for m in net.modules():
        if isinstance(m, _INIT_TYPES):
            if isinstance(m.weight, nn.parameter.UninitializedParameter):
                raise ValueError(f'init={init!r}: {type(m).__name__} has not been given its '
                                 'shape yet; run one batch through the net first (net(X)) '
                                 'or pass init=None')
            fn(m)
    return net


# ---------------------------------------------------------------------------------------------
# History

def _nan():
    return float('nan')


@dataclasses.dataclass(repr=False)
class History:
    """What `train_ch6` measured, one entry per finished epoch.

    Lists: train_loss, train_acc, test_acc, lr (the learning rate used in the epoch),
    epoch_time (seconds for the epoch, evaluation included) and train_time (seconds of
    training only). best_test_acc and best_epoch (1-based), examples_per_sec (training
    examples / training time, d2l's definition), device, status ('finished', 'diverged' or
    'interrupted') and message (why it stopped, '' when it finished).
    """
    train_loss: list = dataclasses.field(default_factory=list)
    train_acc: list = dataclasses.field(default_factory=list)
    test_acc: list = dataclasses.field(default_factory=list)
    lr: list = dataclasses.field(default_factory=list)
    epoch_time: list = dataclasses.field(default_factory=list)
    train_time: list = dataclasses.field(default_factory=list)
    best_test_acc: float = dataclasses.field(default_factory=_nan)
    best_epoch: object = None
    examples_per_sec: float = dataclasses.field(default_factory=_nan)
    num_examples: int = 0  # training examples seen over the finished epochs
    device: str = ''
    status: str = 'finished'
    message: str = ''

    @property
    def epochs(self):
        """Number of finished epochs."""
        return len(self.train_loss)

    def __len__(self):
        return self.epochs

    def _add_epoch(self, train_loss, train_acc, test_acc, lr, epoch_time, train_time, examples):
        self.train_loss.append(train_loss)
        self.train_acc.append(train_acc)
        self.test_acc.append(test_acc)
        self.lr.append(lr)
        self.epoch_time.append(epoch_time)
        self.train_time.append(train_time)
        self.num_examples += examples
        # A NaN test accuracy never counts as the best; ties keep the earlier epoch.
        if not math.isnan(test_acc) and not test_acc <= self.best_test_acc:
            self.best_test_acc, self.best_epoch = test_acc, self.epochs
        total = sum(self.train_time)
        self.examples_per_sec = self.num_examples / total if total > 0 else _nan()

    def final(self):
        """The last finished epoch's numbers (NaN if none finished), with the best and the speed."""
        def last(values):
            return values[-1] if values else _nan()
        return {'epoch': self.epochs, 'train_loss': last(self.train_loss),
                'train_acc': last(self.train_acc), 'test_acc': last(self.test_acc),
                'lr': last(self.lr), 'best_test_acc': self.best_test_acc,
                'best_epoch': self.best_epoch, 'examples_per_sec': self.examples_per_sec,
                'status': self.status}

    def to_dict(self):
        """Plain lists, numbers and strings for json.dumps (a diverged loss stays NaN, which
        Python's json writes as NaN and reads back)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        """Rebuild a History from `to_dict()` output; keys it does not know are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: (list(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
        for key in ('best_test_acc', 'examples_per_sec'):
            if kwargs.get(key) is None:  # a strict-JSON writer may have stored NaN as null
                kwargs.pop(key, None)
        return cls(**kwargs)

    def __repr__(self):
        where = f' on {self.device}' if self.device else ''
        text = f'History({self.status}, {self.epochs} epoch{"s" * (self.epochs != 1)}{where}'
        if self.epochs:
            f = self.final()
            text += (f': loss {f["train_loss"]:.3f}, train acc {f["train_acc"]:.3f}, '
                     f'test acc {f["test_acc"]:.3f}; best test acc {self.best_test_acc:.4f} '
                     f'in epoch {self.best_epoch}; {self.examples_per_sec:.1f} examples/sec')
        if self.message:
            text += f'; {self.message}'
        return text + ')'


class TrainingDiverged(RuntimeError):
    """Raised by train_ch6(..., on_diverge='raise') when the loss stops being finite."""

    def __init__(self, message, history):
        super().__init__(message)
        self.history = history


# ---------------------------------------------------------------------------------------------
# chapter 6

def _resolve_device(device):
    device = try_gpu() if device is None else torch.device(device)
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'device {device} was asked for, but CUDA is not available here; '
                             'pass device=None (try_gpu picks the best there is) or "cpu"')
        if device.index is None:  # print cuda:0 like d2l, not a bare cuda
            device = torch.device('cuda', torch.cuda.current_device())
    return device


def _make_optimizer(optimizer, net, lr):
    params = list(net.parameters())
    if not params:
        raise ValueError('the net has no parameters to train')
    if optimizer is None:
        return torch.optim.SGD(params, lr=lr)
    if not isinstance(optimizer, torch.optim.Optimizer):
        if not callable(optimizer):
            raise TypeError('optimizer must be None, a torch.optim.Optimizer, or a function '
                            f'params -> Optimizer; got {type(optimizer).__name__}')
        optimizer = optimizer(net.parameters())
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError('the optimizer function must return a torch.optim.Optimizer, '
                            f'it returned {type(optimizer).__name__}')
    # A common notebook slip: the optimizer was built for an earlier instance of the model.
    own = {id(p) for p in params}
    held = [p for group in optimizer.param_groups for p in group['params']]
    if not any(id(p) in own for p in held):
        raise ValueError('the optimizer holds none of this net\'s parameters (was it created '
                         'for another instance of the model?); build it with net.parameters() '
                         'after creating the net, or pass a function params -> optimizer')
    return optimizer


_SCHEDULER_TYPES = (getattr(torch.optim.lr_scheduler, 'LRScheduler', None)
                    or torch.optim.lr_scheduler._LRScheduler,  # torch < 2.0 name
                    torch.optim.lr_scheduler.ReduceLROnPlateau)


def _make_scheduler(scheduler, optimizer):
    if scheduler is None:
        return None
    if isinstance(scheduler, _SCHEDULER_TYPES):
        if scheduler.optimizer is not optimizer:
            raise ValueError('the scheduler was created for another optimizer than the one '
                             'train_ch6 uses; pass the same optimizer, or a function '
                             'optimizer -> scheduler')
        return scheduler
    if callable(scheduler):
        return scheduler(optimizer)
    raise TypeError('scheduler must be None, an LR scheduler, or a function optimizer -> '
                    f'scheduler; got {type(scheduler).__name__}')


def _log_epoch(epoch, num_epochs, history):
    """One line per epoch on the process's own stderr, for `python -m my_utils.reproduce`.

    In a notebook kernel sys.stderr is the cell's output; sys.__stderr__ is the terminal that
    started the kernel, so a long reproduction shows its progress there, not in the notebook.
    """
    f = history.final()
    stream = sys.__stderr__ or sys.stderr
    print(f'    epoch {epoch}/{num_epochs}: loss {f["train_loss"]:.3f}, train acc '
          f'{f["train_acc"]:.3f}, test acc {f["test_acc"]:.3f} ({history.epoch_time[-1]:.1f} s)',
          file=stream, flush=True)


class EpochTotals:
    """A training epoch's summed loss and correct predictions, kept on the device.

    Adding a batch costs no host sync; `read()` is the epoch's one sync. `seen` (the number of
    examples) is known on the host from the shapes.
    """

    def __init__(self, device):
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.seen = 0

    def add(self, loss_sum, y_hat, y):
        """Add one batch: its summed loss and its predictions."""
        with torch.no_grad():
            self.loss_sum.add_(loss_sum.float())
            self.correct.add_(_num_correct(y_hat, y))
        self.seen += _batch_size(y)

    def read(self):
        """(mean loss, accuracy) over the examples added so far: one host sync."""
        loss_sum, correct = torch.stack((self.loss_sum, self.correct.float())).tolist()
        seen = max(self.seen, 1)
        return loss_sum / seen, correct / seen


def train_step(net, X, y, loss, optimizer, totals, *, autocast=contextlib.nullcontext,
               mark_step=False, check=False):
    """One optimizer step on a batch that is already on the device; adds the batch's loss and
    correct predictions to `totals` (an EpochTotals) without reading anything back.

    The mean loss over the batch is backpropagated whatever the loss's reduction. mark_step:
    the net is compiled with CUDA graphs. check: also check the inputs and labels (train_ch6
    does it on its first batch; the label check costs one sync).
    """
    if mark_step:
        torch.compiler.cudagraph_mark_step_begin()
    if check:
        _check_first_batch(X, y)
    with autocast():
        y_hat = net(X)
        _check_output(y_hat, y, 'train_ch6')
        if check and isinstance(loss, nn.CrossEntropyLoss):
            _check_labels(y_hat, y)
        l = loss(y_hat, y)
    l_sum, l_mean = _loss_sum_and_mean(l, getattr(loss, 'reduction', 'mean'), _batch_size(y))
    # Before backward: a CUDA-graph output may be overwritten by the next replay.
    totals.add(l_sum, y_hat, y)
    optimizer.zero_grad(set_to_none=True)
    l_mean.backward()
    optimizer.step()


def _channels_last_view_error():
    return RuntimeError('train_ch6(channels_last=True): the model calls .view() on a tensor in '
                        'the channels-last layout, which .view() cannot reshape. Use .reshape() '
                        'or nn.Flatten() in its forward, or train with channels_last=False.')


def _have_cxx_compiler():
    """torch.compile's CPU backend writes C++ and builds it: it needs a compiler on PATH."""
    names = [os.environ.get('CXX'), 'g++', 'clang++', 'c++', 'cl']
    return any(name and shutil.which(name) for name in names)


def compile_model(net, device=None, verbose=True):
    """torch.compile(net) the way train_ch6(compile=True) does; net itself (with a note when
    verbose) where it cannot run. Call it once and train the returned module: it shares its
    parameters with net.

    CUDA: mode='reduce-overhead' (CUDA graphs; call torch.compiler.cudagraph_mark_step_begin()
    before each training step, as train_step(mark_step=True) does). CPU: the default mode,
    which needs a C++ compiler. Other devices: not compiled.
    """
    say = print if verbose else (lambda *args, **kwargs: None)
    device = _resolve_device(device)
    if device.type == 'cuda':
        # CUDA graphs remove the per-kernel launch cost that dominates small models.
        return torch.compile(net, mode='reduce-overhead')
    if device.type == 'cpu':
        if not _have_cxx_compiler():
            say('note: compile=True ignored: torch.compile needs a C++ compiler on the CPU '
                '(none found on PATH; install g++ or clang, or set CXX)')
            return net
        return torch.compile(net)  # fused C++ kernels; graphs are a CUDA feature
    say(f'note: compile=True ignored on {device} (used on CUDA and CPU only)')
    return net


def train_ch6(net, train_iter, test_iter, num_epochs, lr, device=None, *, optimizer=None,
              loss=None, scheduler=None, init='xavier', animate=True, verbose=True, amp=False,
              compile=False, channels_last=False, on_diverge='stop'):
    """Train a model with a GPU (chapter 6); returns a History.

    Prints `training on {device}`, then at the end `loss ..., train acc ..., test acc ...` and
    `... examples/sec on {device}`, as d2l does.

    device: None -> try_gpu(). optimizer: None -> SGD(lr); an Optimizer (lr is then ignored
    and may be None); or a function params -> Optimizer. loss: None -> CrossEntropyLoss();
    reduction 'mean' or 'none' (the batch mean is backpropagated). scheduler: None, a scheduler,
    or a function optimizer -> scheduler, stepped once per epoch (ReduceLROnPlateau with the
    epoch's train loss). init: see `init_weights`. animate=False draws nothing; verbose=False
    prints nothing. amp: bf16 autocast (CUDA only). compile: torch.compile the net, with CUDA
    graphs (mode='reduce-overhead') on CUDA, with C++ kernels on the CPU (needs a C++
    compiler; the first epoch pays the compilation, tens of seconds; it pays off for conv nets
    such as LeNet, less or not at all for nets made of large matrix products). channels_last:
    convert the net's 4-D weights to the channels-last (NHWC) layout, so that its convolutions
    and pooling run in that layout (faster for conv nets on CPU and with amp on CUDA; the net
    stays converted; a forward that calls .view() on a conv output needs .reshape() instead).
    A non-finite loss stops training after that epoch (status 'diverged'; with
    on_diverge='raise' a TrainingDiverged is raised instead); Ctrl-C stops it with status
    'interrupted'. The net is left in eval mode, as d2l leaves it.
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f'train_ch6 needs an nn.Module, got {type(net).__name__}')
    _check_num_epochs(num_epochs)
    if optimizer is None and (isinstance(lr, bool) or not isinstance(lr, numbers.Real)
                              or not lr > 0):
        raise ValueError(f'lr must be a positive number when no optimizer is given, got {lr!r}')
    if on_diverge not in ('stop', 'raise'):
        raise ValueError(f"on_diverge must be 'stop' or 'raise', got {on_diverge!r}")
    _check_not_empty(train_iter, 'train_iter')
    _check_not_empty(test_iter, 'test_iter')
    say = print if verbose else (lambda *args, **kwargs: None)

    device = _resolve_device(device)
    init_weights(net, init)
    say(f'training on {device}')
    net.to(device)
    if channels_last:
        # Convolutions follow their weights' layout: converting the net is enough, the batches
        # need not be touched.
        net.to(memory_format=torch.channels_last)
    optimizer = _make_optimizer(optimizer, net, lr)
    scheduler = _make_scheduler(scheduler, optimizer)
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    loss = nn.CrossEntropyLoss() if loss is None else loss

    on_cuda = device.type == 'cuda'
    if amp and not on_cuda:
        say(f'note: amp=True ignored on {device} (used on CUDA only)')
    use_amp = bool(amp) and on_cuda
    if use_amp and not torch.cuda.is_bf16_supported():
        say('note: amp=True ignored: this GPU does not support bf16')
        use_amp = False
    autocast = ((lambda: torch.autocast('cuda', dtype=torch.bfloat16)) if use_amp
                else contextlib.nullcontext)
    forward = compile_model(net, device, verbose) if compile else net
    use_graphs = forward is not net and on_cuda  # CUDA graphs need a step marker

    animator = None
    if animate:
        animator = Animator(xlabel='epoch', xlim=[1, max(num_epochs, 2)],
                            legend=['train loss', 'train acc', 'test acc'])
    history = History(device=str(device))
    # The first batch is checked for uint8 inputs and labels beyond the model's outputs, where
    # torch's own errors are cryptic (on CUDA only 'device-side assert triggered').
    first_batch = True
    timer = Timer()
    epoch = 0
    try:
        for epoch in range(1, num_epochs + 1):
            epoch_start = time.perf_counter()
            epoch_lr = float(optimizer.param_groups[0]['lr'])
            net.train()
            timer.start()
            totals = EpochTotals(device)
            for X, y in train_iter:
                X, y = _to(X, device), _to(y, device)
                try:
                    train_step(forward, X, y, loss, optimizer, totals, autocast=autocast,
                               mark_step=use_graphs, check=first_batch)
                except RuntimeError as err:
                    if first_batch and channels_last and 'view size is not compatible' in str(err):
                        raise _channels_last_view_error() from None
                    raise
                first_batch = False
            if totals.seen == 0:
                raise _empty_error('train_iter')
            train_loss, train_acc = totals.read()  # the epoch's one host sync
            train_time = timer.stop()
            test_correct, test_count = _count_correct(
                forward, test_iter, device, 'test_iter', autocast, check=True,
                mark_step=use_graphs)
            test_acc = test_correct / test_count
            history._add_epoch(train_loss, train_acc, test_acc, epoch_lr,
                               time.perf_counter() - epoch_start, train_time, totals.seen)
            if animator is not None:
                animator.add(epoch, (train_loss, train_acc, test_acc))
            if os.environ.get('MY_UTILS_PROGRESS'):
                _log_epoch(epoch, num_epochs, history)
            if not math.isfinite(train_loss):
                history.status = 'diverged'
                history.message = (f'training stopped: the loss became {train_loss} in epoch '
                                   f'{epoch} (lr {epoch_lr:g}). Try a lower learning rate, '
                                   'gradient clipping or a different init.')
                break
            if scheduler is not None:
                if plateau:
                    scheduler.step(train_loss)
                else:
                    scheduler.step()
    except KeyboardInterrupt:
        history.status = 'interrupted'
        history.message = (f'training interrupted in epoch {epoch}; returning the history of '
                           f'{history.epochs} finished epochs')
    finally:
        net.eval()  # d2l leaves the net in eval mode after its last evaluation

    if history.epochs:
        f = history.final()
        say(f'loss {f["train_loss"]:.3f}, train acc {f["train_acc"]:.3f}, '
            f'test acc {f["test_acc"]:.3f}')
        say(f'{history.examples_per_sec:.1f} examples/sec on {device}')
    if history.message:
        say(history.message)
    if history.status == 'diverged' and on_diverge == 'raise':
        raise TrainingDiverged(history.message, history)
    return history


__all__ = ['accuracy', 'evaluate_accuracy', 'train_epoch_ch3', 'train_ch3', 'predict_ch3',
           'evaluate_accuracy_gpu', 'init_weights', 'train_ch6', 'train_step', 'EpochTotals', 'compile_model',
           'History', 'TrainingDiverged']
