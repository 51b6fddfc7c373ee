"""The marker's check: what reports/ says agrees with the stored runs, and one row retrains to them.

    python -m audit check              # (a) the tables, (b) 04 step 2 retrained in full, seed 0
    python -m audit check --quick      # (a) only

(b) trains 04's step 2 (Xavier init, SGD lr 0.1, batch 256, 10 epochs) on seed 0 from nothing
and judges its test accuracy by the rule against the row's stored seeds, as the report judges a
reported number; it also compares it with the stored seed 0. About 10 minutes on 2 CPU cores.
"""
import dataclasses
import tempfile
import time
from pathlib import Path

from . import rule, variants
from .consistency import problems
from .store import RunStore
from .train import train_variant

RETRAIN = ('04', '2', 0)   # variant, row, seed: a row that trains to a real accuracy in minutes
SAME_SEED = 0.02           # another CPU or library build moves the last digits, not the outcome


def check(cmd):
    found = problems(cmd.repo)
    print('(a) reports, README table, lessons and summary.json against the stored runs: '
          + ('agree' if not found else f'{len(found)} problem(s)'), flush=True)
    for problem in found:
        print('   ', problem)
    failures = len(found)
    if not cmd.settings.quick:
        failures += retrain(cmd)
    print('check passed' if not failures else f'check FAILED ({failures} problem(s))')
    return 1 if failures else 0


def retrain(cmd):
    """(b): retrain one stored run in full and judge it against the stored seeds; 0 when it agrees."""
    key, row_id, seed = RETRAIN
    module = variants.load(key)
    stored = RunStore(cmd.reports / 'runs' / module.NAME).records(row_id)
    if not stored:
        print(f'(b) {module.NAME} row {row_id!r}: no stored run to compare with')
        return 1
    start = time.time()
    print(f'(b) retraining {module.NAME} row {row_id!r}, seed {seed} (about 10 minutes on 2 CPU cores) ...',
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = dataclasses.replace(cmd.settings, quick=False, rows=[row_id], seed=seed,
                                       stored_only=False, retrain=False, runs=tmp)
        error = train_variant(module, settings)
        again = RunStore(Path(tmp) / module.NAME).get(row_id, seed)
    if error or again is None:
        print(f'    no run: {error}')
        return 1
    spec = {'row': row_id, 'reported': again['test_acc'], 'failure': None, 'metric': 'test_acc'}
    verdict = rule.judge_row(spec, stored)
    same = next((r for r in stored if r['seed'] == seed), None)
    close = same is not None and abs(same['test_acc'] - again['test_acc']) <= SAME_SEED
    print(f"    retrained: test acc {again['test_acc']:.4f} in {time.time() - start:.0f} s; "
          f"the {len(stored)} stored seeds: {verdict.status} by the rule ({verdict.why}); "
          f"stored seed {seed}: {same['test_acc']:.4f}" if same else '', flush=True)
    return int(verdict.status != 'reproduced' or not close)
