"""What train_ch6 sets up once (optimizer, scheduler, amp, compile, layout, label checks) and
the step and evaluation that use it: the options most calls never pass live here, so that the
loop in train6.py reads as d2l's.
"""
import contextlib
import os
import shutil

import torch
from torch import nn

from .checks import (LabelOutOfRange, channels_last_view_error, check_choice, check_loader,
                     check_lr, check_num_epochs, empty_error, resolve_device)
from .evaluation import _count_correct, _to
from .labelguard import LabelGuard
from .step import _CLASS_LOSSES, train_step

__all__ = ['compile_model']


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

    def __init__(self, net, train_iter, device, lr, optimizer, loss, scheduler, amp, compile,
                 channels_last, say):
        net.to(device)
        if channels_last:
            # Convolutions follow their weights' layout: converting the net is enough.
            net.to(memory_format=torch.channels_last)
        self.net, self.device, self.channels_last = net, device, channels_last
        self.optimizer = _make_optimizer(optimizer, net, lr)
        self.scheduler = scheduler(self.optimizer) if callable(scheduler) and not isinstance(
            scheduler, _SCHEDULER_TYPES) else scheduler
        self.loss = nn.CrossEntropyLoss() if loss is None else loss
        self.labels = LabelGuard(train_iter, device, self.loss, _CLASS_LOSSES)
        self.autocast = _autocast(amp, device, say)
        self.forward = compile_model(net, device, say is print) if compile else net
        self.mark_step = self.forward is not net and device.type == 'cuda'  # CUDA graphs
        self.first_batch = True  # checked in full: uint8 inputs, float or too large labels

    def lr(self):
        return float(self.optimizer.param_groups[0]['lr'])

    def step(self, X, y, totals, epoch, i):
        """Fetch the batch to the device and take one step; labels are checked per loader."""
        try:
            y = self.labels.labels_for_step(y, totals, epoch)
            X, y = _to(X, self.device), _to(y, self.device)
            train_step(self.forward, X, y, self.loss, self.optimizer, totals,
                       autocast=self.autocast, mark_step=self.mark_step,
                       check=self.first_batch, label_range=self.labels.label_range)
        except LabelOutOfRange as err:
            raise LabelOutOfRange(f'train_ch6: epoch {epoch}, batch {i}: {err}') from None
        except RuntimeError as err:
            if self.first_batch and self.channels_last and 'view size is not' in str(err):
                raise channels_last_view_error() from None
            raise
        if self.first_batch:
            self.labels.learn(totals)
        self.first_batch = False

    def read(self, totals, epoch):
        """(train loss, train acc) so far: one host sync."""
        try:
            return totals.read()
        except LabelOutOfRange as err:
            raise LabelOutOfRange(f'train_ch6: epoch {epoch}, {err}') from None

    def read_epoch(self, totals, epoch, batches_before):
        """The epoch's (train loss, train acc), its one sync; an epoch without data is named
        (batches_before: the batches of epoch 1, None if not known yet)."""
        if totals.seen == 0:
            raise empty_error('train_iter', epoch, batches_before)
        return self.read(totals, epoch)

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
