"""Running a coursework's rows: quick mode, seeds, stored results and the reported-vs-ours table."""
import contextlib
import datetime
import json
import math
import os
import socket
import statistics
import time
from pathlib import Path

import torch

from .utils import set_seed

# SPEC's rule: a single reported run is reproduced when our mean is within 1.5 points of it,
# or it lies inside our seeds' min..max.
TOLERANCE = 0.015
# A run "failed" like the reports' lr 0.9 rows when it is no better than guessing among 10 classes.
FAILURE_ACC = 0.11
# Seeds a verdict on a single reported run should rest on (SPEC).
MIN_SEEDS = 3


def _env_flag(name):
    return os.environ.get(name, '').strip().lower() in ('1', 'true', 'yes', 'on')


def quick_mode():
    """True when MY_UTILS_QUICK=1: notebooks use a small subset and one or two epochs."""
    return _env_flag('MY_UTILS_QUICK')


def stored_only():
    """True when MY_UTILS_STORED_ONLY=1: a notebook shows the stored runs and trains nothing."""
    return _env_flag('MY_UTILS_STORED_ONLY')


def num_seeds(default=3):
    """Seeds per base run: MY_UTILS_SEEDS, else `default` (1 in quick mode)."""
    value = os.environ.get('MY_UTILS_SEEDS')
    if value:
        try:
            n = int(value)
        except ValueError:
            raise ValueError(f'MY_UTILS_SEEDS must be a whole number, got {value!r}') from None
        if n < 1:
            raise ValueError(f'MY_UTILS_SEEDS must be at least 1, got {n}')
        return n
    return 1 if quick_mode() else default


def run_info():
    """One line for a notebook's first cell: mode, device, versions, date."""
    from .devices import try_gpu
    mode = 'quick' if quick_mode() else 'full'
    return (f'mode: {mode}; device: {try_gpu()}; torch {torch.__version__}; '
            f'date: {datetime.date.today().isoformat()}')


class ResultStore:
    """The finished runs of one notebook, keyed by (row, seed).

    Saved to $MY_UTILS_RESULTS/<name>.json after every run when that variable is set (the
    reproduce command sets it), so a stopped reproduction restarts where it left off;
    otherwise kept in memory only, so quick runs and nbval never write files.

    Two processes may reproduce the same notebook at once (one per CPU core, say): a run in
    progress is claimed in <name>.claims/, the other process skips it and goes on to the next
    run, and every save (one process at a time, see update_results) merges the runs the other
    process stored meanwhile.
    """

    def __init__(self, name, directory=None):
        directory = directory or os.environ.get('MY_UTILS_RESULTS')
        suffix = '.quick.json' if quick_mode() else '.json'
        self.path = Path(directory) / f'{name}{suffix}' if directory else None
        self.name = name
        self._records = {}
        self.rows = []  # the notebook's reported rows, as given to compare_table
        if self.path:
            saved = _read_results(self.path)
            self._records = {(r['row'], r['seed']): r for r in saved.get('runs', [])}
            self.rows = saved.get('rows', [])

    def run(self, row, seed, train_fn):
        """Return the record of (row, seed), training it with `train_fn()` only if not stored yet.

        Every generator is seeded with `seed` first, so a model built inside `train_fn` starts
        from the same weights each time. A run that another live process is training right
        now is skipped: the record returned then has status 'running elsewhere' and NaN numbers
        and is not stored. With MY_UTILS_STORED_ONLY=1 nothing is trained: a run not stored yet
        gets such a record with status 'not run'.
        """
        key = (row, seed)
        if key not in self._records:
            self._merge_saved()
        if key in self._records:
            return self._records[key]
        if stored_only():
            print(f'row {row}, seed {seed}: not run yet (this execution shows stored runs only)')
            return _placeholder(row, seed, 'not run')
        claim = self._claim(row, seed)
        if claim is False:
            print(f'row {row}, seed {seed}: being trained by another process; skipped here '
                  f'(if that process is gone, delete {self._claim_path(row, seed)})')
            return _placeholder(row, seed, 'running elsewhere')
        try:
            set_seed(seed)
            start = time.time()
            history = train_fn()
            record = {'row': row, 'seed': seed, 'wall_s': round(time.time() - start, 1),
                      'torch': torch.__version__, 'quick': quick_mode(),
                      'date': datetime.datetime.now().isoformat(timespec='seconds')}
            record.update(_summary(history))
            # An interrupted run is not a result: keep it out so a restart reruns it.
            if record['status'] != 'interrupted':
                self._records[key] = record
                self._save()
        finally:
            if claim:
                claim.unlink(missing_ok=True)
        return record

    def records(self, row):
        """All stored runs of one row, by seed, including those another process stored by now.

        A run still in progress elsewhere is not among them: a table or plot made from these
        must allow for a row with no run yet."""
        self._merge_saved()
        return sorted((r for (name, _), r in self._records.items() if name == row),
                      key=lambda r: r['seed'])

    def remember_rows(self, rows, metric):
        """Keep the reported rows with the results, so a report can be written from the file alone."""
        known = {row['row']: row for row in self.rows}
        for row in rows:
            known[row['row']] = dict(row, metric=row.get('metric', metric))
        self.rows = list(known.values())
        self._save()

    def _saved_runs(self):
        if self.path is None or not self.path.exists():
            return {}
        try:
            saved = json.loads(self.path.read_text())
        except json.JSONDecodeError:
            return {}  # a file we could not read is reported by __init__, not here
        return {(r['row'], r['seed']): r for r in saved.get('runs', [])}

    def _merge_saved(self):
        """Take in the runs another process stored since we last read the file."""
        for key, record in self._saved_runs().items():
            self._records.setdefault(key, record)

    def _claim_path(self, row, seed):
        name = ''.join(c if c.isalnum() or c in '.-' else '_' for c in str(row))
        return self.path.with_suffix('.claims') / f'{name}__{seed}'

    def _claim(self, row, seed):
        """Mark (row, seed) as being trained by this process: the claim file's path, None when
        nothing is saved (no file, no claim), or False when another live process holds it."""
        if self.path is None:
            return None
        claim = self._claim_path(row, seed)
        claim.parent.mkdir(parents=True, exist_ok=True)
        if _owner_alive(claim):  # None (unclaimed or half-written) or False (owner gone): take it
            return False
        claim.write_text(_owner_mark())
        return claim

    def _save(self):
        if self.path is None:
            return

        def merge(saved):
            # keep what another process stored meanwhile, and any other keys (last_error)
            for record in saved.get('runs', []):
                self._records.setdefault((record['row'], record['seed']), record)
            saved.update(notebook=self.name, rows=self.rows,
                         runs=sorted(self._records.values(), key=lambda r: (r['row'], r['seed'])))

        update_results(self.path, merge)


def update_results(path, change):
    """Read the results file at `path`, let `change(results)` edit the dict, write it back.

    One process at a time (a lock file beside it), so two reproductions sharing the file never
    write over each other's runs; the write goes through a temporary file, so a stopped process
    never leaves half a file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(path.with_suffix('.lock')):
        results = _read_results(path)
        change(results)
        tmp = path.with_suffix(f'.{os.getpid()}.tmp')
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(path)


def _read_results(path):
    """The results file as a dict ({} when there is none yet)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as err:
        raise ValueError(f'{path} is not valid JSON ({err}); move it away to start '
                         'this notebook\'s results afresh') from None


@contextlib.contextmanager
def _file_lock(lock, timeout=60):
    """Hold `lock` (a file created exclusively, which works on every OS) for the block.

    A lock left by a process that is gone is taken over.
    """
    deadline = time.time() + timeout
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            # None: gone already, or its owner is still writing its name; wait for it
            if _owner_alive(lock) is False:
                lock.unlink(missing_ok=True)
            elif time.time() > deadline:
                raise TimeoutError(f'{lock} has been held for {timeout} s; if no reproduction '
                                   'is running, delete it and run again') from None
            else:
                time.sleep(0.05)
    try:
        os.write(fd, _owner_mark().encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


def _placeholder(row, seed, status):
    """The record of a run that was not trained here: NaN numbers, never stored."""
    return {'row': row, 'seed': seed, 'status': status,
            **{k: math.nan for k in ('train_loss', 'train_acc', 'test_acc', 'best_test_acc')},
            'best_epoch': None, 'epochs': 0}


def _owner_mark():
    """What a claim or lock file holds: this machine and this process."""
    return f'{socket.gethostname()} {os.getpid()}'


def _owner_alive(path):
    """Whether the process named in a claim or lock file still runs: True (or on another
    machine, where we cannot tell), False when it is gone, None when the file is missing or
    not yet written."""
    try:
        host, pid = path.read_text().split()
        pid = int(pid)
    except (FileNotFoundError, ValueError):
        return None
    return host != socket.gethostname() or _alive(pid)


def _alive(pid):
    """Whether a process with this id runs on this machine."""
    if os.name == 'nt':
        return True  # signal 0 is CTRL_C_EVENT on Windows: never send it; assume alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def _summary(history):
    """The numbers a report needs from a training History."""
    final = history.final()
    return {'status': history.status, 'device': str(history.device),
            'epochs': len(history.train_loss),
            'train_loss': final.get('train_loss'), 'train_acc': final.get('train_acc'),
            'test_acc': final.get('test_acc'), 'best_test_acc': history.best_test_acc,
            'best_epoch': history.best_epoch, 'examples_per_sec': history.examples_per_sec,
            'history': history.to_dict()}


def _is_failure(record):
    loss = record.get('train_loss')
    return (record['status'] == 'diverged' or loss is None or not math.isfinite(loss)
            or (record.get('test_acc') or 0) <= FAILURE_ACC)


def _how_it_failed(records):
    """'the loss became nan in epoch 1' or 'it stayed at chance ...' for failed runs."""
    diverged = [r for r in records if r['status'] == 'diverged'
                or r.get('train_loss') is None or not math.isfinite(r['train_loss'])]
    if diverged:
        epochs = sorted({r.get('epochs') for r in diverged if r.get('epochs')})
        where = f' in epoch {", ".join(map(str, epochs))}' if epochs else ''
        return f'our run{"s" * (len(records) > 1)} diverged (loss nan or inf{where})'
    return (f'our run{"s" * (len(records) > 1)} stayed at chance (test accuracy '
            f'<= {FAILURE_ACC}) without diverging')


def metric_value(record, metric):
    """A stored run's number for `metric`: a key of the record, or 'test_acc_5_10_15' (the best
    test accuracy among those epochs, from the stored history; the last epoch when the run
    stopped before the first of them). None when the run has no such number."""
    if record.get(metric) is not None:
        return record[metric]
    epochs = metric[len('test_acc_'):].split('_') if metric.startswith('test_acc_') else []
    accs = (record.get('history') or {}).get('test_acc') or []
    if not epochs or not all(e.isdigit() for e in epochs) or not accs:
        return None
    at = [accs[int(e) - 1] for e in epochs if 1 <= int(e) <= len(accs)]
    return max(at) if at else accs[-1]


def verdict(reported, records, failure=False, metric='test_acc', pending='no run stored for this row'):
    """(verdict, reason) for one row, by SPEC's rule; `pending` is the reason when nothing ran."""
    if not records:
        return 'not yet run', pending
    if failure:
        failed = sum(_is_failure(r) for r in records)
        if failed == len(records):
            return 'reproduced', f'the run fails as reported ({failed}/{len(records)} seeds)'
        return 'not reproduced', f'only {failed}/{len(records)} seeds failed; the report had a failure'
    values = [v for v in (metric_value(r, metric) for r in records) if v is not None]
    if not values:
        return 'not yet run', f'no stored run has a {metric} number'
    mean = statistics.fmean(values)
    # SPEC's rule is for at least 3 seeds: say when a verdict rests on fewer.
    seeds = '' if len(values) >= MIN_SEEDS else f' ({len(values)} seed{"s" * (len(values) > 1)}, SPEC asks for {MIN_SEEDS})'
    if all(_is_failure(r) for r in records):  # "-75 points" would hide how it failed
        return 'not reproduced', f'{_how_it_failed(records)}, where the report trained{seeds}'
    if abs(mean - reported) <= TOLERANCE:
        return 'reproduced', f'mean within {TOLERANCE * 100:.1f} points of the report{seeds}'
    if min(values) <= reported <= max(values):
        return 'reproduced', f'the reported value lies inside our min..max{seeds}'
    side = 'below' if mean < reported else 'above'
    return 'not reproduced', f'mean {(mean - reported) * 100:+.1f} points ({side} the report){seeds}'


def summarize(values):
    """'mean ± std (min..max, n=K)' for a list of accuracies."""
    values = [v for v in values if v is not None]
    if not values:
        return '-'
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{mean:.4f} ± {std:.4f} ({min(values):.4f}..{max(values):.4f}, n={len(values)})'


class Markdown(str):
    """A string that a notebook renders as Markdown and a terminal prints as it is."""

    def _repr_markdown_(self):
        return str(self)


def compare_table(rows, store, metric='test_acc'):
    """The reported numbers beside ours, one line per row, with SPEC's verdict.

    rows: dicts with 'row' (the store key), 'setup' (text), 'reported' (the reported number,
    or None if the report gives none) and optionally 'failure' (True for a reported
    divergence), 'metric' (this row's metric, else `metric`) and 'note'. The rows are also
    kept in the store, so `python -m my_utils.reproduce` can write the report from its file.
    In quick mode the numbers are shown without a verdict.
    """
    store.remember_rows(rows, metric)
    lines = ['| row | set-up | reported | ours: mean ± std (min..max, n) | verdict |',
             '| --- | --- | --- | --- | --- |']
    # Quick mode's numbers (a subset, one epoch) are no evidence either way: no verdicts then.
    for line in row_lines(rows, store.records, metric, judge=not quick_mode()):
        lines.append('| ' + ' | '.join(line) + ' |')
    return Markdown('\n'.join(lines))


def row_lines(rows, records_of, metric='test_acc', pending='no run stored for this row', judge=True):
    """For each row: its id, set-up, reported value, our summary and 'verdict: reason'.

    judge=False (quick-mode runs) shows the numbers without a verdict.
    """
    for spec in rows:
        records = records_of(spec['row'])
        row_metric = spec.get('metric', metric)
        reported = spec.get('reported')
        if reported is None:
            result = 'measured' if records else 'not yet run'
            reason = spec.get('note', 'no number reported') if records else pending
        else:
            result, reason = verdict(reported, records, spec.get('failure', False), row_metric, pending)
        shown = '-' if reported is None else (f'{reported:.4f}' if isinstance(reported, float) else str(reported))
        ours = summarize([metric_value(r, row_metric) for r in records])
        if any(r['status'] == 'diverged' for r in records):
            ours += ' (diverged)'
        if row_metric != 'test_acc':
            shown, ours = f'{shown} ({row_metric})', f'{ours} ({row_metric})'
        if not judge:
            result, reason = 'no verdict', 'quick mode (subset, 1 epoch)'
        yield [spec['row'], spec['setup'], shown, ours, f'{result}: {reason}']

__all__ = ['quick_mode', 'stored_only', 'num_seeds', 'run_info', 'ResultStore', 'verdict', 'summarize',
           'compare_table', 'row_lines', 'metric_value', 'Markdown']
