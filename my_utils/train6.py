"""train_ch6 (d2l's chapter 6 loop) and its parts: one step, the epoch's totals, the set-up.

The loop reads as d2l's: set up, then per epoch fetch, step, accumulate, evaluate, log. The
metrics stay on the device: a few host syncs per epoch, however many batches.
"""
import contextlib
import math
import os
import shutil
import time

import torch
from torch import nn

from .checks import (LabelOutOfRange, channels_last_view_error, check_choice, check_inputs,
                     check_labels, check_loader, check_lr, check_num_epochs, check_output,
                     class_indices, empty_error, label_error, resolve_device)
from .evaluation import _batch_size, _count_correct, _num_correct, _to
from .history import History, TrainingDiverged, attach_history
from .initializers import init_weights
from .plotting import Animator
from .progress import Progress

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
        self._labels = None  # (lowest, highest, first bad batch or -1) on the device

    def add(self, loss_sum, y_hat, y):
        """Add one batch: its summed loss and its predictions."""
        with torch.no_grad():
            self.loss_sum.add_(loss_sum.float())
            self.correct.add_(_num_correct(y_hat, y))
        self.seen += _batch_size(y)
        self.batches += 1

    def watch_labels(self, y, num_classes, ignore_index=None):
        """Note the labels' range on the device; returns labels the loss can take.

        For accelerators, where an out-of-range label in the loss is a device-side assert that
        ends the process's use of the GPU: the labels are clamped into range (a no-op for good
        ones), and the next read() raises if any was outside.
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


def _loss_sum_and_mean(l, reduction, n):
    """(sum over the batch, mean over the batch) of a loss given per example or reduced."""
    if l.dim() == 0:
        if reduction == 'sum':
            return l, l / n
        return l * n, l  # 'mean' (or a plain function returning the mean)
    return l.sum(), l.mean()


def _loss(loss, y_hat, y):
    """loss(y_hat, y); a label out of range is named instead of torch's IndexError (CPU)."""
    try:
        return loss(y_hat, y)
    except IndexError:
        if class_indices(y_hat, y):
            check_labels(y_hat, y, getattr(loss, 'ignore_index', None))  # raises if so
        raise


def train_step(net, X, y, loss, optimizer, totals, *, autocast=contextlib.nullcontext,
               mark_step=False, check=False, guard_labels=False):
    """One optimizer step on a batch that is already on the device; adds the batch's loss and
    correct predictions to `totals` (an EpochTotals) without reading anything back.

    The mean loss over the batch is backpropagated whatever the loss's reduction. mark_step:
    the net is compiled with CUDA graphs. check: also check the inputs and labels (train_ch6
    does it on its first batch; the label check costs one sync). guard_labels: check every
    batch's labels on the device (train_ch6 does on accelerators; read() raises).
    A label out of range raises LabelOutOfRange (a ValueError), never torch's IndexError.
    """
    if mark_step:
        torch.compiler.cudagraph_mark_step_begin()
    if check:
        check_inputs(X, y)
    with autocast():
        y_hat = net(X)
        check_output(y_hat, y, 'train_ch6')
        ignore_index = getattr(loss, 'ignore_index', None)
        if check and isinstance(loss, _CLASS_LOSSES):
            check_labels(y_hat, y, ignore_index)
        if guard_labels and class_indices(y_hat, y):
            y = totals.watch_labels(y, y_hat.shape[1], ignore_index)
        l = _loss(loss, y_hat, y)
    l_sum, l_mean = _loss_sum_and_mean(l, getattr(loss, 'reduction', 'mean'), _batch_size(y))
    # Before backward: a CUDA-graph output may be overwritten by the next replay.
    totals.add(l_sum, y_hat, y)
    optimizer.zero_grad(set_to_none=True)
    l_mean.backward()
    optimizer.step()


# ---------------------------------------------------------------------------------------------
# set-up: optimizer, scheduler, amp and compile policy

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
    device = resolve_device(device)
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


_SCHEDULER_TYPES = (getattr(torch.optim.lr_scheduler, 'LRScheduler', None)
                    or torch.optim.lr_scheduler._LRScheduler,  # torch < 2.0 name
                    torch.optim.lr_scheduler.ReduceLROnPlateau)


def _check_optimizer(optimizer, scheduler, net):
    """The optimizer and scheduler arguments, before anything is changed."""
    params = list(net.parameters())
    if not params:
        raise ValueError('the net has no parameters to train')
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        if not callable(optimizer):
            raise TypeError('optimizer must be None, a torch.optim.Optimizer, or a function '
                            f'params -> Optimizer; got {type(optimizer).__name__}')
    elif optimizer is not None:
        # A common notebook slip: the optimizer was built for an earlier instance of the model.
        own = {id(p) for p in params}
        if not any(id(p) in own for g in optimizer.param_groups for p in g['params']):
            raise ValueError('the optimizer holds none of this net\'s parameters (was it '
                             'created for another instance of the model?); build it with '
                             'net.parameters() after creating the net, or pass a function '
                             'params -> optimizer')
    if isinstance(scheduler, _SCHEDULER_TYPES):
        if scheduler.optimizer is not optimizer:
            raise ValueError('the scheduler was created for another optimizer than the one '
                             'train_ch6 uses; pass the same optimizer, or a function '
                             'optimizer -> scheduler')
    elif scheduler is not None and not callable(scheduler):
        raise TypeError('scheduler must be None, an LR scheduler, or a function optimizer -> '
                        f'scheduler; got {type(scheduler).__name__}')


def _make_optimizer(optimizer, net, lr):
    if optimizer is None:
        return torch.optim.SGD(net.parameters(), lr=lr)
    if not isinstance(optimizer, torch.optim.Optimizer):
        optimizer = optimizer(net.parameters())
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError('the optimizer function must return a torch.optim.Optimizer, '
                            f'it returned {type(optimizer).__name__}')
    return optimizer


def _autocast(amp, device, say):
    """bf16 autocast on CUDA when asked and supported; elsewhere a note and no autocast."""
    if amp and device.type != 'cuda':
        say(f'note: amp=True ignored on {device} (used on CUDA only)')
    elif amp and not torch.cuda.is_bf16_supported():
        say('note: amp=True ignored: this GPU does not support bf16')
    elif amp:
        return lambda: torch.autocast('cuda', dtype=torch.bfloat16)
    return contextlib.nullcontext


class _Run:
    """What train_ch6 sets up once, and the step and evaluation that use it."""

    def __init__(self, net, device, lr, optimizer, loss, scheduler, amp, compile, channels_last,
                 say):
        net.to(device)
        if channels_last:
            # Convolutions follow their weights' layout: converting the net is enough.
            net.to(memory_format=torch.channels_last)
        self.net, self.device, self.channels_last = net, device, channels_last
        self.optimizer = _make_optimizer(optimizer, net, lr)
        self.scheduler = scheduler(self.optimizer) if callable(scheduler) and not isinstance(
            scheduler, _SCHEDULER_TYPES) else scheduler
        self.loss = nn.CrossEntropyLoss() if loss is None else loss
        self.autocast = _autocast(amp, device, say)
        self.forward = compile_model(net, device, say is print) if compile else net
        self.mark_step = self.forward is not net and device.type == 'cuda'  # CUDA graphs
        # On CPU the loss itself raises for a bad label; an accelerator must be guarded.
        self.guard_labels = device.type != 'cpu'
        self.first_batch = True  # checked in full: uint8 inputs, float or too large labels

    def lr(self):
        return float(self.optimizer.param_groups[0]['lr'])

    def step(self, X, y, totals, epoch, i):
        try:
            train_step(self.forward, X, y, self.loss, self.optimizer, totals,
                       autocast=self.autocast, mark_step=self.mark_step,
                       check=self.first_batch, guard_labels=self.guard_labels)
        except LabelOutOfRange as err:
            raise LabelOutOfRange(f'train_ch6: epoch {epoch}, batch {i}: {err}') from None
        except RuntimeError as err:
            if self.first_batch and self.channels_last and 'view size is not' in str(err):
                raise channels_last_view_error() from None
            raise
        self.first_batch = False

    def read(self, totals, epoch):
        """(train loss, train acc) so far: one host sync."""
        try:
            return totals.read()
        except LabelOutOfRange as err:
            raise LabelOutOfRange(f'train_ch6: epoch {epoch}, {err}') from None

    def evaluate(self, test_iter):
        correct, count = _count_correct(self.forward, test_iter, self.device, 'test_iter',
                                        self.autocast, check=True, mark_step=self.mark_step)
        return correct / count

    def step_scheduler(self, train_loss):
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(train_loss)
        elif self.scheduler is not None:
            self.scheduler.step()


def _check_args(net, train_iter, test_iter, num_epochs, lr, device, optimizer, scheduler,
                on_diverge, on_epoch):
    """Every argument checked before train_ch6 changes anything; returns the device."""
    if not isinstance(net, nn.Module):
        raise TypeError(f'train_ch6 needs an nn.Module, got {type(net).__name__}')
    device = resolve_device(device)
    check_num_epochs(num_epochs)
    check_lr(lr, optimizer)
    check_choice('on_diverge', on_diverge, ('stop', 'raise'))
    if on_epoch is not None and not callable(on_epoch):
        raise TypeError(f'on_epoch must be None or a function (epoch, history), got '
                        f'{type(on_epoch).__name__}')
    check_loader(train_iter, 'train_iter', num_epochs)
    check_loader(test_iter, 'test_iter', num_epochs)
    _check_optimizer(optimizer, scheduler, net)
    return device


# ---------------------------------------------------------------------------------------------
# the loop

def _len(data_iter):
    try:
        return len(data_iter)
    except TypeError:
        return None


def _train_epoch(run, train_iter, epoch, progress, animator):
    """One pass over train_iter: (train loss, train acc, totals, training seconds)."""
    run.net.train()
    totals = EpochTotals(run.device)
    progress.start_epoch(epoch)
    start, drawing = time.perf_counter(), 0.0
    for i, (X, y) in enumerate(train_iter, 1):
        X, y = _to(X, run.device), _to(y, run.device)  # fetch
        run.step(X, y, totals, epoch, i)  # step, accumulate (on the device)
        if progress.batch(i, totals.seen) and animator is not None and i < progress.num_batches:
            point = run.read(totals, epoch)  # d2l's points at fifths of an epoch: one sync each
            tick = time.perf_counter()
            animator.add(epoch - 1 + i / progress.num_batches, point + (None,))
            drawing += time.perf_counter() - tick  # drawing is not training
    if totals.seen == 0:
        raise empty_error('train_iter', epoch, progress.num_batches)
    train_loss, train_acc = run.read(totals, epoch)  # the epoch's sync
    return train_loss, train_acc, totals, time.perf_counter() - start - drawing


def _copy_weights(net):
    # On the CPU, so that the copy costs no accelerator memory.
    return {k: v.detach().to('cpu', copy=True) for k, v in net.state_dict().items()}


def _restore_weights(net, saved):
    if saved is not None:
        net.load_state_dict(saved)


def _epoch_line(epoch, num_epochs, history):
    f = history.final()
    return (f'epoch {epoch}/{num_epochs}: loss {f["train_loss"]:.3f}, train acc '
            f'{f["train_acc"]:.3f}, test acc {f["test_acc"]:.3f} ({history.epoch_time[-1]:.1f} s)')


def train_ch6(net, train_iter, test_iter, num_epochs, lr, device=None, *, optimizer=None,
              loss=None, scheduler=None, init='xavier', animate=True, verbose=True, amp=False,
              compile=False, channels_last=False, on_diverge='stop', on_epoch=None):
    """Train a model with a GPU (chapter 6); returns a History.

    Prints `training on {device}`, then at the end `loss ..., train acc ..., test acc ...` and
    `... examples/sec on {device}`, as d2l does. While an epoch runs it shows the batches done,
    examples/s and the time left (a notebook display, a terminal line, or in a log a line every
    few seconds), cleared at the end; the plot gets d2l's five points per epoch.

    device: None -> try_gpu(); one this machine lacks is an error naming those it has.
    optimizer: None -> SGD(lr); an Optimizer (lr is then ignored and may be None); or a
    function params -> Optimizer. loss: None -> CrossEntropyLoss(); reduction 'mean' or 'none'
    (the batch mean is backpropagated). scheduler: None, a scheduler, or a function optimizer
    -> scheduler, stepped once per epoch (ReduceLROnPlateau with the epoch's train loss).
    init: see `init_weights`; init=None continues from the net's current weights.
    animate=False draws nothing. verbose: False/0 prints and shows nothing; True/1 d2l's lines
    and the progress; 2 also a line per epoch. amp: bf16 autocast (CUDA only). compile:
    torch.compile the net, with CUDA graphs on CUDA, with C++ kernels on the CPU (needs a C++
    compiler; the first epoch pays the compilation). channels_last: convert the net's 4-D
    weights to the NHWC layout (faster for conv nets on CPU and with amp on CUDA; a forward
    that calls .view() on a conv output needs .reshape() instead).
    on_epoch: None or a function called as on_epoch(epoch, history) after each finished epoch
    (epoch counts from 1; history holds the epochs so far), e.g. to log or save a checkpoint:
    `on_epoch=lambda e, h: print(e, h.test_acc[-1], file=sys.__stderr__)`.

    A non-finite loss stops training after that epoch (status 'diverged'; with
    on_diverge='raise' a TrainingDiverged is raised instead). Ctrl-C prints one line and raises
    KeyboardInterrupt again, so a loop over runs stops; like any other error raised while
    training it carries the finished epochs as `err.history`. An error in the arguments or in the
    first batch (dtypes, output shape, labels) is raised before any step, with the net's weights
    as they were before the call. The net is left in eval mode.
    """
    device = _check_args(net, train_iter, test_iter, num_epochs, lr, device, optimizer,
                         scheduler, on_diverge, on_epoch)
    say = print if verbose else (lambda *args, **kwargs: None)
    # The first batch is checked (dtypes, shapes, labels) inside the first step, after the init:
    # a copy of the weights lets a call stopped there leave the net as it found it.
    saved = _copy_weights(net) if init is not None else None
    say(f'training on {device}')
    try:
        init_weights(net, init)
        run = _Run(net, device, lr, optimizer, loss, scheduler, amp, compile, channels_last, say)
    except Exception:
        _restore_weights(net, saved)
        raise
    animator = None
    if animate:
        animator = Animator(xlabel='epoch', xlim=[0, num_epochs],
                            legend=['train loss', 'train acc', 'test acc'])
        animator.show()  # the axes at once, the curves as they come
    progress = Progress(num_epochs, _len(train_iter), shown=bool(verbose))
    history = History(device=str(device))
    epoch = 1
    try:
        for epoch in range(1, num_epochs + 1):
            epoch_start, epoch_lr = time.perf_counter(), run.lr()
            train_loss, train_acc, totals, train_time = _train_epoch(
                run, train_iter, epoch, progress, animator)
            test_acc = run.evaluate(test_iter)
            history._add_epoch(train_loss, train_acc, test_acc, epoch_lr,
                               time.perf_counter() - epoch_start, train_time, totals.seen)
            progress.end_epoch(totals.batches, history.epoch_time[-1])
            if animator is not None:
                animator.add(epoch, (train_loss, train_acc, test_acc))
            if verbose and verbose >= 2:
                say(_epoch_line(epoch, num_epochs, history))
            if on_epoch is not None:
                on_epoch(epoch, history)
            if not math.isfinite(train_loss):
                history.status = 'diverged'
                history.message = (f'training stopped: the loss became {train_loss} in epoch '
                                   f'{epoch} (lr {epoch_lr:g}). Try a lower learning rate, '
                                   'gradient clipping or a different init.')
                break
            run.step_scheduler(train_loss)
    except KeyboardInterrupt as err:
        progress.close()  # the message goes where the progress line was
        history.status = 'interrupted'
        history.message = (f'training interrupted in epoch {epoch}; the {history.epochs} '
                           'finished epoch(s) are in err.history; train_ch6(..., init=None) '
                           'continues from the current weights')
        say(history.message)
        attach_history(err, history)
        raise  # so that a loop over runs stops too
    except Exception as err:
        if run.first_batch:  # no step was taken: the weights are the caller's again
            _restore_weights(net, saved)
        history.status, history.message = 'failed', f'{type(err).__name__} in epoch {epoch}'
        attach_history(err, history)
        raise
    finally:
        progress.close()
        net.eval()  # d2l leaves the net in eval mode after its last evaluation

    f = history.final()
    say(f'loss {f["train_loss"]:.3f}, train acc {f["train_acc"]:.3f}, '
        f'test acc {f["test_acc"]:.3f}')
    say(f'{history.examples_per_sec:.1f} examples/sec on {device}')
    if history.message:
        say(history.message)
    if history.status == 'diverged' and on_diverge == 'raise':
        raise TrainingDiverged(history.message, history)
    return history
