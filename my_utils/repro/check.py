"""The marker's check: the tables agree with the stored runs, and two cheap rows retrain to them.

    python -m my_utils.repro check
"""
import dataclasses
import math
import tempfile
from pathlib import Path

from .consistency import problems
from .execute import execute_notebook
from .store import RunStore

# Cheap rows with a stored run each: (notebook, row, seed). Both fail within one epoch, so the
# check takes minutes; a failure reproduces only if the same code fails the same way.
RETRAIN = [('04_fashion_patch_mlp_tuning', '1', 0), ('02_fashion_two_mlp_unfold', 'sgd lr 0.2 m 0.99 wd 0.0', 0)]
ACC_TOLERANCE = 0.02  # another CPU or library build changes the last digits, not the outcome


def check(cmd):
    names = sorted(p.stem for p in (cmd.repo / 'notebooks').glob('[0-9][0-9]_*.ipynb'))
    found = problems(cmd.repo, names)
    print('(a) reports, README table and executed copies against the stored runs: '
          + ('agree' if not found else f'{len(found)} problem(s)'))
    for problem in found:
        print('   ', problem)
    failures = len(found)
    for name, row_id, seed in RETRAIN:
        stored = RunStore(cmd.reports / 'runs' / name).get(row_id, seed)
        if stored is None:
            print(f'(b) {name} {row_id!r} seed {seed}: no stored run to compare with')
            failures += 1
            continue
        with tempfile.TemporaryDirectory() as tmp:
            settings = dataclasses.replace(cmd.settings, quick=False, seeds=seed + 1, rows=[row_id],
                                           stored_only=False, runs=tmp)
            print(f'(b) retraining {name} {row_id!r} seed {seed} ...', flush=True)
            error = execute_notebook(cmd.repo / 'notebooks' / f'{name}.ipynb',
                                     Path(tmp) / 'copy.ipynb', settings, echo=False)
            again = RunStore(Path(tmp) / name).get(row_id, seed)
        same = (error is None and again is not None and again['status'] == stored['status']
                and again['epochs'] == stored['epochs']
                and _close(again['test_acc'], stored['test_acc']))
        print(f"    stored: {stored['status']}, {stored['epochs']} epochs, test acc {stored['test_acc']:.4f}; "
              + (f"now: {again['status']}, {again['epochs']} epochs, test acc {again['test_acc']:.4f}"
                 if again else f'now: no run ({error})') + (' -> same' if same else ' -> DIFFERENT'))
        failures += not same
    print('check passed' if not failures else f'check FAILED ({failures} problem(s))')
    return 1 if failures else 0


def _close(a, b):
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= ACC_TOLERANCE
