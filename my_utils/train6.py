"""train_ch6, d2l's chapter 6 loop: set up, then per epoch fetch, step, accumulate, evaluate,
report. The step is step.py's, the set-up trainsetup.py's, and what is shown or called while
it runs (progress, the plot, on_epoch) watchers.py's. The metrics stay on the device: a few
host syncs per epoch, however many batches.
"""
import math
import time

from .history import History, TrainingDiverged, attach_history
from .initializers import init_weights
from .step import EpochTotals, train_step
from .trainsetup import _check_args, _Run, compile_model
from .watchers import Watchers

__all__ = ['train_ch6', 'train_step', 'EpochTotals', 'compile_model', 'init_weights', 'History',
           'TrainingDiverged']


# ---------------------------------------------------------------------------------------------
# the loop

def _fit(run, train_iter, test_iter, num_epochs, history, watch):
    """d2l's loop: per epoch fetch, step and accumulate every batch, then evaluate and report."""
    for epoch in range(1, num_epochs + 1):
        start, lr, totals = time.perf_counter(), run.lr(), EpochTotals(run.device)
        run.net.train()
        watch.start_epoch(epoch)
        for i, (X, y) in enumerate(train_iter, 1):
            run.step(X, y, totals, epoch, i)  # fetch, step, accumulate (on the device)
            watch.batch(i, totals, lambda: run.read(totals, epoch))  # progress, plot points
        train_loss, train_acc = run.read_epoch(totals, epoch, watch.progress.num_batches)
        train_time = time.perf_counter() - start - watch.drawing  # after the epoch's sync
        test_acc = run.evaluate(test_iter)
        history._add_epoch(train_loss, train_acc, test_acc, lr, time.perf_counter() - start,
                           train_time, totals.seen)
        watch.end_epoch(history, totals)  # the plot, the line per epoch, on_epoch
        if _diverged(history, epoch, lr):
            break
        run.step_scheduler(train_loss)


def _diverged(history, epoch, lr):
    """A non-finite loss ends the run: the status and message say why."""
    if math.isfinite(history.train_loss[-1]):
        return False
    history.status = 'diverged'
    history.message = (f'training stopped: the loss became {history.train_loss[-1]} in epoch '
                       f'{epoch} (lr {lr:g}). Try a lower learning rate, gradient clipping or '
                       'a different init.')
    return True


def _copy_weights(net):
    # On the CPU, so that the copy costs no accelerator memory.
    return {k: v.detach().to('cpu', copy=True) for k, v in net.state_dict().items()}


def _restore_weights(net, saved):
    if saved is not None:
        net.load_state_dict(saved)


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
        run = _Run(net, train_iter, device, lr, optimizer, loss, scheduler, amp, compile,
                   channels_last, say)
    except Exception:
        _restore_weights(net, saved)
        raise
    watch = Watchers(num_epochs, train_iter, animate=animate, verbose=verbose,
                     on_epoch=on_epoch, say=say)
    history = History(device=str(device))
    try:
        _fit(run, train_iter, test_iter, num_epochs, history, watch)
    except KeyboardInterrupt as err:
        watch.close()  # the message goes where the progress line was
        history.status = 'interrupted'
        history.message = (f'training interrupted in epoch {watch.epoch}; the {history.epochs} '
                           'finished epoch(s) are in err.history; train_ch6(..., init=None) '
                           'continues from the current weights')
        say(history.message)
        attach_history(err, history)
        raise  # so that a loop over runs stops too
    except Exception as err:
        if run.first_batch:  # no step was taken: the weights are the caller's again
            _restore_weights(net, saved)
        history.status, history.message = 'failed', f'{type(err).__name__} in epoch {watch.epoch}'
        attach_history(err, history)
        raise
    finally:
        watch.close()
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
