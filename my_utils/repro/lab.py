"""What a coursework notebook uses to run the report's rows: `Lab`, and `row` to declare them.

A lesson cell reads

    lab.run_rows(ROWS, train, SETUP)

and the Lab does the rest: every seed of every row, trained once and stored (when the
reproduction command runs the notebook), shown from the store when it is there already.
"""
import datetime
import inspect
import json
import os
import time
from pathlib import Path

import torch

from my_utils.training import History
from my_utils.utils import set_seed

from . import provenance, settings as settings_module
from .store import RunStore, write_json
from .verdict import JUDGES, combined, metric_value, outcome, summarize, verdict


def row(row_id, setup, reported=None, *, failure=None, metric='test_acc', seeds=None,
        explains=None, claim=None, test=None, untested=None, note='', reported_train=None, **options):
    """One row of a report's table: its id, what it changes (text), the reported number.

    failure: 'nan' or 'chance' when the report's run failed. seeds: more seeds than the
    default (for a failure that may depend on the seed). explains/claim: a hypothesis row,
    run to explain why the row(s) `explains` (an id or a list) do not reproduce, with the
    claims it tests (a text or a list of texts, or a dict of them by row). test: how a claim
    is judged when not by the verdict rule (one kind, or a dict by claim): 'some seeds fail' (a
    row's own failure depends on the seed), 'last epochs' (the report's number is one noisy
    last epoch of a run like this row's) or 'seed spread' (it is one draw of the spread of this
    row's seeds). untested: claims about this row that no run here can test, as {claim: why}
    (they keep its explanation open). options: the keyword arguments of the notebook's train
    function for this row."""
    kinds = set(test.values()) if isinstance(test, dict) else {test}
    if not kinds <= set(JUDGES):
        raise ValueError(f'row {row_id!r}: test must be one of {sorted(k for k in JUDGES if k)} '
                         f'(or None for the verdict rule), got {sorted(map(str, kinds - set(JUDGES)))}')
    return {'row': row_id, 'setup': setup, 'reported': reported, 'failure': failure,
            'metric': metric, 'seeds': seeds, 'explains': explains, 'claim': claim,
            'test': test, 'untested': untested or {}, 'note': note, 'reported_train': reported_train,
            'options': options}


TABLE_HEADER = '| row | set-up | reported | ours: mean ± std (min..max, n) | verdict | explanation |'


class Markdown(str):
    """Rendered as Markdown in a notebook, printed as it is in a terminal."""

    def _repr_markdown_(self):
        return str(self)


class Lab:
    """The runs of one notebook. `quick` is the notebook's own choice; the reproduction command
    overrides it (and says where runs are stored)."""

    def __init__(self, name, quick=True):
        passed = (settings_module.current() if settings_module.VARIABLE in os.environ
                  else settings_module.Settings(quick=quick))
        self.name, self.settings = name, passed
        self.quick = passed.quick
        folder = Path(passed.runs) / (f'{name}.quick' if self.quick else name) if passed.runs else None
        self.store = RunStore(folder)
        self.rows = {}

    @classmethod
    def from_store(cls, name, folder):
        """A Lab over stored runs only (for the report): rows from the notebook's last manifest."""
        lab = cls.__new__(cls)
        lab.name, lab.quick = name, False
        lab.settings = settings_module.Settings(quick=False, stored_only=True, runs=str(Path(folder).parent))
        lab.store = RunStore(folder)
        manifest = Path(folder) / 'manifest.json'
        rows = json.loads(manifest.read_text())['rows'] if manifest.exists() else []
        lab.rows = {r['row']: r for r in rows}
        return lab

    def __repr__(self):
        mode = 'quick (a subset, 1 epoch: checks the code, judges nothing)' if self.quick else 'full'
        where = self.store.folder or 'memory (nothing is written)'
        extra = '; stored runs only' if self.settings.stored_only else ''
        return f'{self.name}: {mode} mode, {self.settings.num_seeds} seed(s) a row; runs in {where}{extra}'

    # ------------------------------------------------------------------ running
    def run_rows(self, rows, train, setup):
        """Train (or show from the store) every seed of every row; returns None.

        train(**row options) -> History. setup: what every row shares (model, epochs, data
        subset, ...): with the row's options it makes the fingerprint a stored run is checked by."""
        defaults = {k: p.default for k, p in inspect.signature(train).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        for spec in rows:
            options = {**defaults, **spec['options']}
            spec = dict(spec, fingerprint=provenance.fingerprint(
                {'notebook': self.name, **setup, **options}), setup_values={**setup, **options},
                left_at_default=sorted(set(defaults) - set(spec['options'])))
            self.rows[spec['row']] = spec
        self._write_manifest()
        chosen = self.settings.rows
        for spec in rows:
            if chosen and spec['row'] not in chosen:
                continue
            seeds = 1 if self.quick else max(spec['seeds'] or 0, self.settings.seeds)
            for seed in range(seeds):
                self._run(self.rows[spec['row']], seed, lambda: train(**spec['options']))

    def _run(self, spec, seed, train):
        row_id = spec['row']
        stored = self.store.get(row_id, seed)
        if stored and is_current(stored, spec):
            _show(stored)
            return stored
        if stored and self.settings.stored_only:
            print(f'{row_id}, seed {seed}: stored run is STALE (made with another set-up); '
                  'the reproduction command trains it again')
            _show(stored)
            return stored
        if self.settings.stored_only:
            print(f'{row_id}, seed {seed}: not run yet')
            return None
        marker = self.store.claim(row_id, seed) if self.settings.share else None
        if self.settings.share and marker is None:
            print(f'{row_id}, seed {seed}: another process is training it; skipped here '
                  f'(delete {self.store.path(row_id, seed, "running")} if none is)')
            return None
        try:
            if stored:  # the set-up changed since: keep the old run beside, train anew
                self.store.put_aside(stored, f'stale-{stored.get("fingerprint")}')
            print(f'--- {row_id}, seed {seed}')
            record = self._train(spec, seed, train)
        finally:
            if marker:
                marker.unlink(missing_ok=True)
        self.store.put(record)
        return record

    def _train(self, spec, seed, train):
        set_seed(seed)
        start = time.time()
        try:
            history = train()
        except KeyboardInterrupt as err:
            partial = getattr(err, 'history', None)
            if partial is not None and partial.epochs:
                self._keep_interrupted(spec, seed, partial, start)
            raise
        if history.status == 'interrupted':  # a train function that swallowed the Ctrl-C
            self._keep_interrupted(spec, seed, history, start)
            raise KeyboardInterrupt(f'{spec["row"]}, seed {seed} interrupted')
        return self._record(spec, seed, history, start)

    def _keep_interrupted(self, spec, seed, history, start):
        record = self._record(spec, seed, history, start)
        self.store.put_aside(record, 'interrupted')
        if self.store.folder:
            print(f'interrupted: the {history.epochs} finished epochs are kept in '
                  f'{self.store.path(spec["row"], seed, "interrupted.json.keep")} (not a result)')

    def _record(self, spec, seed, history, start):
        final = history.final()
        record = {'row': spec['row'], 'seed': seed, 'status': history.status,
                  'epochs': history.epochs, 'train_loss': final['train_loss'],
                  'train_acc': final['train_acc'], 'test_acc': final['test_acc'],
                  'best_test_acc': history.best_test_acc, 'best_epoch': history.best_epoch,
                  'examples_per_sec': history.examples_per_sec, 'device': history.device,
                  'wall_s': round(time.time() - start, 1), 'quick': self.quick,
                  'date': datetime.datetime.now().isoformat(timespec='seconds'),
                  'fingerprint': spec['fingerprint'], 'setup': spec['setup_values'],
                  'command': 'python -m my_utils.repro ' + self.name[:2]
                             + (' --quick' if self.quick else ''),
                  **provenance.environment(history.device or 'cpu', self.settings.repo,
                                           self.settings.data and Path(self.settings.data)),
                  'history': history.to_dict()}
        return record

    def _write_manifest(self):
        if self.store.folder is None:
            return
        write_json(self.store.folder / 'manifest.json',
                   {'notebook': self.name, 'rows': list(self.rows.values())})

    # ------------------------------------------------------------------ reading
    def records(self, row_id):
        """The stored runs of a row, made with its current set-up."""
        spec = self.rows.get(row_id)
        return [r for r in self.store.records(row_id) if spec is None or is_current(r, spec)]

    def values(self, row_id, metric=None):
        metric = metric or self.rows.get(row_id, {}).get('metric', 'test_acc')
        return [v for v in (metric_value(r, metric) for r in self.records(row_id)) if v is not None]

    def verdict(self, row_id):
        """(status, text) of a row by the verdict rule; quick mode judges nothing."""
        spec = self.rows[row_id]
        if self.quick:
            return 'no verdict', 'quick mode (subset, 1 epoch)'
        return verdict(spec['reported'], self.records(row_id), spec['failure'], spec['metric'])

    def explanation(self, row_id):
        """(outcome, text) of the hypotheses run for a row, or None when it has none.

        Each claim is judged on its own rows, so one confirmed claim does not lend its word to
        another: 'claim A: confirmed (...); claim B: open (...)'. The row's outcome is confirmed
        when some claim is, refuted when every claim is, else open."""
        hypotheses = [s for s in self.rows.values() if row_id in explained_rows(s)]
        untested = self.rows[row_id].get('untested') or {}
        if not hypotheses and not untested:
            return None
        if self.quick:
            return 'open', 'quick mode: nothing to judge'
        by_claim = {}
        for spec in hypotheses:
            for claim in _claims(spec, row_id):
                by_claim.setdefault(claim, []).append(dict(spec, test=_test(spec, claim)))
        words, parts = [], []
        for claim, specs in by_claim.items():
            word, text = outcome(self.rows[row_id], specs, self.records)
            words.append(word)
            parts.append(f'{claim}: {word} ({text})')
        for claim, why in untested.items():
            words.append('open')
            parts.append(f'{claim}: untested ({why})')
        return combined(words), '; '.join(parts)

    def table(self, rows=None):
        """The report's numbers beside ours, with the verdict and the explanation of a miss."""
        return Markdown(table_markdown(self, rows))

    def short_rows(self):
        """The rows short of their seeds: how many are stored, why the rest are not, the CPU time
        they need at the pace of the stored runs, and the command that resumes them."""
        return Markdown(short_rows_markdown(self))

    def figure(self, rows=None, metric='test_acc'):
        """Every seed's curve of every row (test accuracy per epoch), from the stored histories."""
        from .plots import rows_figure
        return rows_figure(self, rows or list(self.rows), metric)


def table_markdown(source, rows=None):
    """A Markdown table of rows; `source` has .rows, .records(row), .verdict(row), .explanation(row)."""
    lines = [TABLE_HEADER, '| --- | --- | --- | --- | --- | --- |']
    for row_id in rows or list(source.rows):
        spec = source.rows[row_id]
        records = source.records(row_id)
        ours = summarize([metric_value(r, spec['metric']) for r in records])
        status, text = source.verdict(row_id)
        explained = source.explanation(row_id)
        reported = '-' if spec['reported'] is None else f"{spec['reported']:.4f}"
        if spec['metric'] != 'test_acc':
            reported, ours = f"{reported} ({spec['metric']})", f"{ours} ({spec['metric']})"
        others = [r for r in explained_rows(spec) if r != row_id]
        role = 'hypothesis for ' + ', '.join(f'`{r}`' for r in others) if others else ''
        setup = spec['setup'] + (f' ({role})' if role else '')
        lines.append(f"| {row_id} | {setup} | {reported} | {ours} | {status}: {text} | "
                     f"{explained[1] if explained else spec.get('note') or '-'} |")
    return '\n'.join(lines)


def short_rows_markdown(lab):
    """Markdown for Lab.short_rows (also a section of the report)."""
    if lab.quick:
        return 'Quick mode: one seed a row by design; the reproduction command counts the full runs.'
    short = [(row_id, spec, lab.records(row_id)) for row_id, spec in lab.rows.items()
             if len(lab.records(row_id)) < max(spec.get('seeds') or 0, 3)]
    if not short:
        return 'Every row has its seeds.'
    lines = ['| row | seeds stored | needed | minutes a run (stored runs) | CPU hours left | command |',
             '| --- | --- | --- | --- | --- | --- |']
    total, unknown = 0.0, []
    for row_id, spec, records in short:
        needed = max(spec.get('seeds') or 0, 3)
        minutes = [r['wall_s'] / 60 for r in records]
        pace = sum(minutes) / len(minutes) if minutes else None
        if pace is None:
            unknown.append(row_id)
        else:
            total += pace * (needed - len(records)) / 60
        left = '-' if pace is None else f'{pace * (needed - len(records)) / 60:.1f}'
        lines.append(f"| {row_id} | {len(records)} | {needed} | {'-' if pace is None else f'{pace:.0f}'} | "
                     f"{left} | `python -m my_utils.repro {lab.name[:2]} --rows \"{row_id}\"` |")
    why = (f'Why not yet: CPU time. These {sum(max(s.get("seeds") or 0, 3) - len(r) for _, s, r in short)} '
           f'runs need about {total:.1f} CPU hours (one core a run, at the pace of the stored runs'
           + (f'; more for {len(unknown)} row(s) never run)' if unknown else ')')
           + '. The runs so far were made on a 2-core CPU without a GPU, in sessions of at most 3 hours, '
           'which ran first the rows and hypotheses that decide a verdict or an explanation. Each '
           'command resumes a row, training only the seeds it lacks.')
    return why + '\n\n' + '\n'.join(lines)


def is_current(record, spec):
    """Whether a stored run was made with the row's current set-up.

    Its fingerprint matches; or the train function has since gained keywords that this row leaves
    at their defaults, and without them the set-up is the stored one. A keyword added later with
    a default that keeps the old behaviour (02's `after_base=False`) must not make every earlier
    run stale."""
    if spec.get('fingerprint') is None or record.get('fingerprint') == spec['fingerprint']:
        return True
    stored = record.get('setup')
    if not isinstance(stored, dict):
        return False
    added = set(spec.get('left_at_default') or ()) - set(stored)
    current = {k: v for k, v in spec['setup_values'].items() if k not in added}
    return json.loads(json.dumps(current, sort_keys=True, default=str)) == stored


def _claims(spec, row_id):
    """A hypothesis row's claims about `row_id`: `claim` is one text, a list, or a dict of
    either by row."""
    claim = spec.get('claim')
    claim = claim.get(row_id) if isinstance(claim, dict) else claim
    return (claim if isinstance(claim, list) else [claim]) if claim else ['another reading']


def _test(spec, claim):
    """How a claim is judged: `test` is one kind for all the row's claims, or a dict by claim."""
    test = spec.get('test')
    return test.get(claim) if isinstance(test, dict) else test


def explained_rows(spec):
    """The rows a hypothesis row explains (its `explains`, one id or a list)."""
    explains = spec.get('explains') or []
    return [explains] if isinstance(explains, str) else list(explains)


def _show(record):
    """A stored run as train_ch6 printed it, with where it came from."""
    h = History.from_dict(record['history'])
    print(f"{record['row']}, seed {record['seed']}: stored run of {record['date'][:16]} "
          f"({record.get('hardware') or record.get('device')}, commit {(record.get('commit') or '?')[:7]})")
    print(f'training on {h.device}')
    if h.epochs:
        f = h.final()
        print(f'loss {f["train_loss"]:.3f}, train acc {f["train_acc"]:.3f}, test acc {f["test_acc"]:.3f}')
        print(f'{h.examples_per_sec:.1f} examples/sec on {h.device}')
    if h.message:
        print(h.message)
