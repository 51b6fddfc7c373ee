"""Progress inside an epoch: batches done of the total, examples/s and time left.

Shown where the run is watched: in a notebook one display updated in place (as fastprogress
does), in a terminal one line rewritten with '\\r', in a log file one line every few seconds at
most. Everything it shows is counted on the host, so it costs no device sync.

Under nbval a notebook's outputs are compared: nbval keeps a display's first content and
ignores its updates, and nbclient keeps its last. Both are empty, so the cell's outputs are the
same on every run.
"""
import sys
import time

from .devices import _in_notebook


def _clock(seconds):
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f'{hours}:{rest // 60:02d}:{rest % 60:02d}' if hours else f'{rest // 60}:{rest % 60:02d}'


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


class Progress:
    """Counts the batches of a run and shows where it is.

    `batch(i, seen)` is called after every batch (host counters only); it returns True at the
    fifths of an epoch (d2l's plot points), where the caller may read the metrics.
    num_batches: batches per epoch, None when the loader has no len() (then learnt in epoch 1).
    stream: None picks the notebook, else sys.stderr; shown=False shows nothing.
    """

    def __init__(self, num_epochs, num_batches, shown=True, stream=None, points=5):
        self.num_epochs, self.num_batches, self.points = num_epochs, num_batches, points
        self._sink = _sink(stream) if shown else None
        self._epoch_times = []
        self._marks = frozenset()
        self._last_shown = time.perf_counter()

    def start_epoch(self, epoch):
        self.epoch, self._start = epoch, time.perf_counter()
        n = self.num_batches
        # round(k n / points), k = 1..points: evenly spaced, the last one the epoch's end, and
        # fewer (no division by zero) when an epoch has fewer batches than points.
        self._marks = frozenset(round(k * n / self.points) for k in range(1, self.points + 1)
                                if n) - {0}

    def batch(self, i, seen):
        """Batch i (1-based) of the epoch is done, `seen` examples so far in the epoch."""
        mark = i in self._marks
        if self._sink is not None:
            now = time.perf_counter()
            if (mark and getattr(self._sink, 'marks', True)
                    or now - self._last_shown >= self._sink.every):
                self._last_shown = now
                self._sink.show(self.text(i, seen, now - self._start))
        return mark

    def end_epoch(self, batches, seconds):
        """The epoch is over: `batches` it had, `seconds` it took, evaluation included."""
        if self.num_batches is None:
            self.num_batches = batches
        self._epoch_times.append(seconds)

    def text(self, i, seen, elapsed):
        """e.g. 'epoch 2/10: batch 37/100, 12,345 examples/s, 1:23 left'."""
        rate = f'{seen / elapsed:,.0f} examples/s' if elapsed > 0 else ''
        n = self.num_batches
        if not n:
            return f'epoch {self.epoch}/{self.num_epochs}: batch {i}, {rate}'
        this_epoch = elapsed / i * (n - i)
        epoch_time = (sum(self._epoch_times) / len(self._epoch_times) if self._epoch_times
                      else elapsed / i * n)
        left = this_epoch + epoch_time * (self.num_epochs - self.epoch)
        return (f'epoch {self.epoch}/{self.num_epochs}: batch {i}/{n}, {rate}, '
                f'{_clock(left)} left')

    def close(self):
        """Clear the line: what stays is the same on every run."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None
