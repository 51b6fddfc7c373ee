"""Progress inside an epoch: batches done of the total, examples/s and time left.

Progress hands its listeners ProgressEvent values (numbers, not text); `render` is the one
place that turns an event into the printed line. The default listener shows it where the run
is watched: in a notebook one display updated in place (as fastprogress does), in a terminal
one line rewritten with '\\r', in a log file one line every few seconds at most. Everything in
an event is counted on the host, so it costs no device sync.

Under nbval a notebook's outputs are compared: nbval keeps a display's first content and
ignores its updates, and nbclient keeps its last. Both are empty, so the cell's outputs are the
same on every run.
"""
import dataclasses
import sys
import time

from .devices import _in_notebook


def _clock(seconds):
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f'{hours}:{rest // 60:02d}:{rest % 60:02d}' if hours else f'{rest // 60}:{rest % 60:02d}'


@dataclasses.dataclass(frozen=True)
class ProgressEvent:
    """Where a run is: sent after a batch, and once more when an epoch is over (`done`).

    batch: batches done in this epoch; num_batches: per epoch (None while a loader without
    len() is in its first epoch); examples: examples trained on in this epoch; seconds: since
    the epoch began; seconds_left: the run's estimated time left (None when unknown). loss and
    acc: the epoch's training loss and accuracy so far, where train_ch6 read them (the plot's
    points, the epoch's end; None elsewhere: reading them costs a device sync); test_acc and
    epoch_seconds (evaluation included): in the `done` event.
    """
    epoch: int
    num_epochs: int
    batch: int
    num_batches: object
    examples: int
    seconds: float
    seconds_left: object = None
    loss: object = None
    acc: object = None
    test_acc: object = None
    epoch_seconds: object = None
    done: bool = False

    @property
    def examples_per_sec(self):
        return self.examples / self.seconds if self.seconds > 0 else None


def render(event):
    """The line a person reads, e.g. 'epoch 2/10: batch 37/100, 12,345 examples/s, 1:23 left',
    or for an epoch's `done` event 'epoch 2/10: loss 0.512, train acc 0.812, test acc 0.801
    (3.2 s)'."""
    where = f'epoch {event.epoch}/{event.num_epochs}'
    if event.done:
        return (f'{where}: loss {event.loss:.3f}, train acc {event.acc:.3f}, test acc '
                f'{event.test_acc:.3f} ({event.epoch_seconds:.1f} s)')
    rate = event.examples_per_sec
    rate = f'{rate:,.0f} examples/s' if rate is not None else ''
    if not event.num_batches:
        return f'{where}: batch {event.batch}, {rate}'
    return (f'{where}: batch {event.batch}/{event.num_batches}, {rate}, '
            f'{_clock(event.seconds_left)} left')


class _NotebookLine:
    """One display handle updated in place."""
    every = 0.5  # seconds between time-driven updates

    def __init__(self):
        from IPython.display import display
        self._handle = display({'text/plain': ''}, raw=True, display_id=True)

    def show(self, text):
        self._handle.update({'text/plain': text}, raw=True)

    def close(self):
        self.show('')


class _TerminalLine:
    """One line rewritten with a carriage return."""
    every = 0.5

    def __init__(self, stream):
        self._stream, self._width = stream, 0

    def show(self, text):
        self._width = max(self._width, len(text))
        self._stream.write('\r' + text.ljust(self._width))
        self._stream.flush()

    def close(self):
        if self._width:
            self._stream.write('\r' + ' ' * self._width + '\r')
            self._stream.flush()


class _LogLines:
    """A file is read afterwards: a line now and then, never rewritten."""
    every = 5.0
    marks = False  # the fifths of an epoch would crowd a log of a fast run

    def __init__(self, stream):
        self._stream = stream

    def show(self, text):
        print(text, file=self._stream, flush=True)

    def close(self):
        pass


def _sink(stream):
    if stream is None:
        if _in_notebook():
            return _NotebookLine()
        stream = sys.stderr
    isatty = getattr(stream, 'isatty', None)
    return _TerminalLine(stream) if isatty is not None and isatty() else _LogLines(stream)


class _Shown:
    """The default listener: renders in-epoch events on a sink, no more often than it wants."""

    def __init__(self, sink):
        self._sink, self._last_shown = sink, time.perf_counter()

    def __call__(self, event, mark, now):
        if (mark and getattr(self._sink, 'marks', True)
                or now - self._last_shown >= self._sink.every):
            self._last_shown = now
            self._sink.show(render(event))

    def close(self):
        self._sink.close()


class Progress:
    """Counts the batches of a run and tells its listeners where it is, as ProgressEvents.

    `batch(i, seen)` is called after every batch (host counters only); it returns True at the
    fifths of an epoch (d2l's plot points), where the caller may read the metrics.
    num_batches: batches per epoch, None when the loader has no len() (then learnt in epoch 1).
    stream: None picks the notebook, else sys.stderr; shown=False shows nothing. listeners:
    more functions called as listener(event) with every event (after every batch: keep them
    cheap).
    """

    def __init__(self, num_epochs, num_batches, shown=True, stream=None, points=5,
                 listeners=()):
        self.num_epochs, self.num_batches, self.points = num_epochs, num_batches, points
        self._shown = _Shown(_sink(stream)) if shown else None
        self.listeners = list(listeners)
        self._epoch_times = []
        self._marks = frozenset()

    def start_epoch(self, epoch):
        self.epoch, self._start = epoch, time.perf_counter()
        n = self.num_batches
        # round(k n / points), k = 1..points: evenly spaced, the last one the epoch's end, and
        # fewer (no division by zero) when an epoch has fewer batches than points.
        self._marks = frozenset(round(k * n / self.points) for k in range(1, self.points + 1)
                                if n) - {0}

    def is_mark(self, i):
        """Whether batch i ends a fifth of the epoch (where d2l's plot takes a point)."""
        return i in self._marks

    def batch(self, i, seen, loss=None, acc=None):
        """Batch i (1-based) of the epoch is done, `seen` examples so far in the epoch (and the
        loss and accuracy so far, when the caller has read them)."""
        mark = i in self._marks
        if self._shown is not None or self.listeners:
            now = time.perf_counter()
            event = ProgressEvent(self.epoch, self.num_epochs, i, self.num_batches, seen,
                                  now - self._start, self._left(i, now - self._start), loss, acc)
            if self._shown is not None:
                self._shown(event, mark, now)
            for listener in self.listeners:
                listener(event)
        return mark

    def end_epoch(self, batches, seconds, examples=0, train_seconds=0.0, loss=None, acc=None,
                  test_acc=None):
        """The epoch is over: `batches` it had, `seconds` it took, evaluation included (and
        what it measured). Returns the epoch's `done` event, which the listeners also get."""
        if self.num_batches is None:
            self.num_batches = batches
        self._epoch_times.append(seconds)
        event = ProgressEvent(self.epoch, self.num_epochs, batches, self.num_batches, examples,
                              train_seconds, self._left(batches, train_seconds), loss, acc,
                              test_acc, seconds, done=True)
        for listener in self.listeners:
            listener(event)
        return event

    def _left(self, i, elapsed):
        """The run's time left after batch i of this epoch, from the epochs so far."""
        n = self.num_batches
        if not n or not i:
            return None
        this_epoch = max(elapsed / i * (n - i), 0.0)
        epoch_time = (sum(self._epoch_times) / len(self._epoch_times) if self._epoch_times
                      else elapsed / i * n)
        return this_epoch + epoch_time * (self.num_epochs - self.epoch)

    def close(self):
        """Clear the line: what stays is the same on every run."""
        if self._shown is not None:
            self._shown.close()
            self._shown = None
