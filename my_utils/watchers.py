"""What train_ch6 shows or calls while it runs: the progress line, d2l's plot, the line per
epoch (verbose=2) and on_epoch. The loop tells them where it is; what they do with it is here.
"""
import time

from .plotting import Animator
from .progress import Progress, render


def _len(data_iter):
    try:
        return len(data_iter)
    except TypeError:  # a generator or another iterable without len()
        return None


class Watchers:
    """train_ch6's listeners, told after every batch and after every epoch.

    `drawing`: the seconds this epoch spent drawing the plot, which is not training time.
    `epoch`: the epoch in progress (1 before the first starts).
    """

    def __init__(self, num_epochs, train_iter, *, animate, verbose, on_epoch, say):
        self.plot = None
        if animate:
            self.plot = Animator(xlabel='epoch', xlim=[0, num_epochs],
                                 legend=['train loss', 'train acc', 'test acc'])
            self.plot.show()  # the axes at once, the curves as they come
        self.progress = Progress(num_epochs, _len(train_iter), shown=bool(verbose))
        self.verbose, self.on_epoch, self.say = verbose, on_epoch, say
        self.epoch, self.drawing = 1, 0.0

    def start_epoch(self, epoch):
        self.epoch, self.drawing = epoch, 0.0
        self.progress.start_epoch(epoch)

    def batch(self, i, totals, read):
        """Batch i is done. At d2l's fifths of an epoch the plot takes a point: read() gives
        the loss and accuracy so far, one host sync each time."""
        point, n = (), self.progress.num_batches
        if self.plot is not None and self.progress.is_mark(i) and i < n:
            point = read()
            tick = time.perf_counter()
            self.plot.add(self.epoch - 1 + i / n, point + (None,))
            self.drawing += time.perf_counter() - tick
        self.progress.batch(i, totals.seen, *point)

    def end_epoch(self, history, totals):
        """The epoch is in history: the plot's point, the line (verbose=2), on_epoch."""
        last = (history.train_loss[-1], history.train_acc[-1], history.test_acc[-1])
        done = self.progress.end_epoch(totals.batches, history.epoch_time[-1], totals.seen,
                                       history.train_time[-1], *last)
        if self.plot is not None:
            self.plot.add(self.epoch, last)
        if self.verbose and self.verbose >= 2:
            self.say(render(done))
        if self.on_epoch is not None:
            self.on_epoch(self.epoch, history)

    def close(self):
        self.progress.close()
