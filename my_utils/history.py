"""History: what train_ch6 measured, one entry per finished epoch."""
import dataclasses
import math


def _nan():
    return float('nan')


@dataclasses.dataclass(repr=False)
class History:
    """What `train_ch6` measured, one entry per finished epoch.

    Lists: train_loss, train_acc, test_acc, lr (the learning rate used in the epoch),
    epoch_time (seconds for the epoch, evaluation included) and train_time (seconds of
    training only). best_test_acc and best_epoch (1-based), examples_per_sec (training
    examples / training time, d2l's definition), device, status and message (why it stopped,
    '' when it finished).

    status: 'finished' or 'diverged' for the History train_ch6 returns. When train_ch6 raises,
    the exception carries the finished epochs as `err.history`, with status 'interrupted'
    (Ctrl-C) or 'failed' (an error).

    repr() is one short line (a cell ending in train_ch6(...) shows no more than d2l's lines);
    str() and summary() give the numbers.
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

    def summary(self):
        """One line with the final numbers, the best test accuracy and the speed."""
        where = f' on {self.device}' if self.device else ''
        text = f'{self.status}, {self.epochs} epoch{"s" * (self.epochs != 1)}{where}'
        if self.epochs:
            f = self.final()
            text += (f': loss {f["train_loss"]:.3f}, train acc {f["train_acc"]:.3f}, '
                     f'test acc {f["test_acc"]:.3f}; best test acc {self.best_test_acc:.4f} '
                     f'in epoch {self.best_epoch}; {self.examples_per_sec:.1f} examples/sec')
        if self.message:
            text += f'; {self.message}'
        return text

    def __str__(self):
        return f'History({self.summary()})'

    def __repr__(self):
        # Short and the same on every run: it is the Out line of a cell ending in train_ch6,
        # which nbval compares.
        return f'History({self.status}, {self.epochs} epoch{"s" * (self.epochs != 1)})'


class TrainingDiverged(RuntimeError):
    """Raised by train_ch6(..., on_diverge='raise') when the loss stops being finite."""

    def __init__(self, message, history):
        super().__init__(message)
        self.history = history


def attach_history(err, history):
    """Give an exception raised while training the finished epochs, as err.history."""
    try:
        err.history = history
    except AttributeError:  # an exception type that takes no attributes
        return
    if history.epochs and hasattr(err, 'add_note'):  # add_note: Python 3.11+
        err.add_note(f'train_ch6: the {history.epochs} finished epoch(s) are in err.history')
