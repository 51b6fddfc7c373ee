"""The runs of one variant: `row` declares a row, `Lab` trains every seed of every row once and
stores it (audit/train.py calls it), or shows what is stored.
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


def row(row_id, setup, reported=None, *, failure=None, metric='test_acc', seeds=None,
        seeds_run=None, explains=None, claim=None, note='', reported_train=None, needs=None, declared=None,
        **options):
    """One row: its id, what it changes (words), the reported number (None: beyond the report).

    failure: 'nan' or 'chance' when the report's run failed. metric: 'test_acc' (last epoch),
    'best_test_acc', or {'best_of_epochs': [5, 10, 15]}. seeds: seeds declared for the row (3 when
    None); seeds_run: seeds run since, when more were added after its verdict was known. explains/claim: a reading, trained to explain the row(s) `explains` (an id or a list),
    and what it claims. needs='cuda': trains only on a CUDA GPU. declared: when a reading was
    declared, 'YYYY-MM-DD HH:MM commit' (post hoc when after its row's first result). options: the
    keyword arguments of the variant's train function for this row."""
    explains = [explains] if isinstance(explains, str) else list(explains or [])
    return {'row': row_id, 'setup': setup, 'reported': reported, 'failure': failure,
            'metric': metric, 'seeds': seeds, 'seeds_run': seeds_run, 'explains': explains, 'claim': claim, 'note': note,
            'reported_train': reported_train, 'needs': needs, 'declared': declared, 'options': options}


class Markdown(str):
    """Rendered as Markdown in a notebook, printed as it is in a terminal."""

    def _repr_markdown_(self):
        return str(self)


class Lab:
    """The runs of one notebook. `quick` is the notebook's own choice; the reproduction command
    overrides it (and says where runs are stored)."""

    def __init__(self, name, quick=True, settings=None):
        passed = settings or (settings_module.current() if settings_module.VARIABLE in os.environ
                              else settings_module.Settings(quick=quick))
        self.name, self.settings = name, passed
        self.quick = passed.quick
        folder = Path(passed.runs) / (f'{name}.quick' if self.quick else name) if passed.runs else None
        self.store = RunStore(folder)
        self.rows = {}

    def __repr__(self):
        mode = 'quick (a subset, 1 epoch: checks the code, judges nothing)' if self.quick else 'full'
        where = f'runs/{self.store.folder.name}/' if self.store.folder else 'memory (nothing is written)'
        extra = '; stored runs only' if self.settings.stored_only else ''
        return f'{self.name}: {mode} mode, {self.settings.num_seeds} seed(s) a row; runs in {where}{extra}'

    # ------------------------------------------------------------------ running
    def declare(self, rows, train, setup):
        """Add rows to this Lab, each with the fingerprint its stored runs are checked by; no training.

        train(**row options) -> History. setup: what every row shares (model, epochs, data subset,
        ...): with the row's options it makes the fingerprint."""
        defaults = {k: p.default for k, p in inspect.signature(train).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        for spec in rows:
            options = {**defaults, **spec['options']}
            self.rows[spec['row']] = dict(
                spec, fingerprint=provenance.fingerprint({'notebook': self.name, **setup, **options}),
                setup_values={**setup, **options},
                left_at_default=sorted(set(defaults) - set(spec['options'])))

    def run_rows(self, rows, train, setup):
        """Train (or show from the store) every seed of every row; returns None."""
        self.declare(rows, train, setup)
        self._write_manifest()
        chosen = self.settings.rows
        for spec in rows:
            if chosen and spec['row'] not in chosen:
                continue
            if spec.get('needs') == 'cuda' and self.settings.device_type != 'cuda':
                print(f"{spec['row']}: trains on a CUDA GPU only; skipped here")
                continue
            seeds = 1 if self.quick else max(spec.get('seeds_run') or spec['seeds'] or 0, self.settings.seeds)
            only = self.settings.seed
            for seed in ([only] if only is not None else range(seeds)):
                self._run(self.rows[spec['row']], seed, lambda: train(**spec['options']))

    def _run(self, spec, seed, train):
        row_id = spec['row']
        stored = self.store.get(row_id, seed)
        if stored and is_current(stored, spec) and not self.settings.retrain:
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
        print(f'--- {row_id}, seed {seed}', flush=True)
        record = self._train(spec, seed, train)
        if stored:  # the set-up changed since, or a retrain was asked: keep the old run beside it
            kind = ('earlier' if is_current(stored, spec) else 'stale') + f'-{stored["date"][:10]}'
            self.store.put_aside(stored, f'{kind}-{stored.get("fingerprint")}')
        self.store.put(record)
        return record

    def _train(self, spec, seed, train):
        set_seed(seed)
        start = time.time()
        # The commit of the code that trains: taken now, since the checkout may move on during the run.
        self._commit = provenance.commit(self.settings.repo)
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
                  'command': f'python -m audit {self.name[:2]} --rows "{spec["row"]}" --seed {seed}'
                             + (' --quick' if self.quick else ''),
                  **provenance.environment(history.device or 'cpu', self.settings.repo,
                                           self.settings.data and Path(self.settings.data)),
                  'history': history.to_dict()}
        record['commit'] = getattr(self, '_commit', record['commit'])  # the commit the run started at
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

    # ------------------------------------------------------------------ judged (audit/judge.py)
    def table(self):
        """Every reported row beside ours, with the verdict and one sentence (Markdown)."""
        from . import judge, report
        return Markdown(report.reported_table(judge.summarize(self)))

    def readings(self):
        """Each miss with its readings and whether they fit (Markdown)."""
        from . import judge
        return Markdown(judge.readings_markdown(judge.summarize(self)))

    def sign_test(self):
        """The sign test of each table of the report (Markdown)."""
        from . import judge
        tests = judge.summarize(self)['sign_tests']
        return Markdown('\n'.join(f"- {t['sentence']}" for t in tests) or 'No table with three or more trained rows.')

    def short_rows(self):
        """The rows short of their seeds and the command that resumes each (Markdown)."""
        from . import judge
        short = judge.summarize(self)['short']
        if not short:
            return Markdown('Every row has its seeds.')
        lines = ['| row | seeds stored | needed | command |', '| --- | --- | --- | --- |']
        return Markdown('\n'.join(lines + [f"| {s['row']} | {s['stored']} | {s['needed']} | `{s['command']}` |"
                                            for s in short]))

    def figure(self, rows=None, metric='test_acc'):
        """Every seed's curve of every row (test accuracy per epoch), from the stored histories."""
        from .plots import rows_figure
        return rows_figure(self, rows or list(self.rows), metric)


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
