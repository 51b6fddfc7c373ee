"""The audit tool: its store, its Lab, its command (a real Ctrl-C, a machine without the data), the
variants' rows against the stored runs, and the committed reports against what the runs give."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import my_utils as mu
from audit import Lab, judge, row, settings, variants
from audit.consistency import problems
from audit.store import RunStore, StoreWarning

REPO = Path(__file__).resolve().parents[1]
DATA = os.environ.get('MY_UTILS_DATA')
needs_data = pytest.mark.skipif(not DATA or not Path(DATA, 'FashionMNIST').is_dir(),
                                reason='needs the real Fashion-MNIST in MY_UTILS_DATA')


def record(row_id, seed, acc=0.86, **extra):
    return {'row': row_id, 'seed': seed, 'status': 'finished', 'epochs': 3, 'train_loss': 0.3,
            'train_acc': 0.9, 'test_acc': acc, 'date': '2026-12-02T00:00:00', 'wall_s': 1.0, **extra}


def test_one_damaged_run_costs_that_run_alone_and_names_its_file(tmp_path):
    store = RunStore(tmp_path)
    for seed in range(3):
        store.put(record('base', seed))
    damaged = store.path('base', 1)
    damaged.write_text(damaged.read_text()[:25])  # truncated, as by a full disk
    with pytest.warns(StoreWarning, match=str(damaged)):
        left = store.records()
    assert [(r['row'], r['seed']) for r in left] == [('base', 0), ('base', 2)]
    assert damaged.with_suffix('.damaged').exists()  # kept, never deleted
    store.put(record('a b/c', 0))
    assert store.path('a b/c', 0).name == 'a_b_c__seed0.json'
    assert not list(tmp_path.glob('.*.tmp'))  # written through a temporary file and a rename


def tiny_train(lr=0.5, epochs=2):
    X = torch.randn(64, 4)
    y = (X[:, 0] > 0).long()
    it = mu.load_array((X, y), 16)
    return mu.train_ch6(nn.Linear(4, 2), it, it, epochs, lr, 'cpu', animate=False, verbose=False)


def lab_in(tmp_path, **changes):
    return Lab('01_tiny', settings=settings.Settings(**{'quick': False, 'seeds': 2, 'runs': str(tmp_path),
                                                         'device': 'cpu', **changes}))


ROWS = [row('base', 'tiny', 0.9), row('fast', 'lr 2', 0.9, lr=2.0)]


def test_each_run_is_trained_once_and_records_where_it_came_from(tmp_path, capsys):
    lab = lab_in(tmp_path)
    lab.run_rows(ROWS, tiny_train, {'model': 'linear'})
    runs = lab.store.records()
    assert [(r['row'], r['seed']) for r in runs] == [('base', 0), ('base', 1), ('fast', 0), ('fast', 1)]
    for key in ('commit', 'fingerprint', 'hardware', 'torch', 'torchvision', 'numpy', 'setup', 'history',
                'date', 'command'):
        assert key in runs[0]
    assert runs[0]['command'] == 'python -m audit 01 --rows "base" --seed 0'
    assert runs[0]['fingerprint'] != runs[2]['fingerprint']  # another lr, another set-up
    capsys.readouterr()
    lab_in(tmp_path).run_rows(ROWS, tiny_train, {'model': 'linear'})  # a restart trains nothing
    assert '---' not in capsys.readouterr().out


def test_a_stale_run_or_a_retrained_one_is_kept_beside_the_new_one(tmp_path):
    lab_in(tmp_path, seeds=1).run_rows(ROWS[:1], tiny_train, {'model': 'linear'})
    lab = lab_in(tmp_path, seeds=1, stored_only=True)
    lab.run_rows(ROWS[:1], tiny_train, {'model': 'linear, wider'})
    assert lab.records('base') == []  # the stale run is not counted
    lab_in(tmp_path, seeds=1).run_rows(ROWS[:1], tiny_train, {'model': 'linear, wider'})
    assert len(list(tmp_path.glob('01_tiny/base__seed0.stale-*.json.keep'))) == 1
    lab_in(tmp_path, seeds=1, retrain=True).run_rows(ROWS[:1], tiny_train, {'model': 'linear, wider'})
    assert len(list(tmp_path.glob('01_tiny/base__seed0.earlier-*.json.keep'))) == 1


def test_one_seed_alone_and_rows_that_need_a_gpu_are_skipped_on_a_cpu(tmp_path, capsys):
    rows = ROWS + [row('gpu', 'on a GPU', None, needs='cuda')]
    lab_in(tmp_path, seed=1).run_rows(rows, tiny_train, {})
    assert [(r['row'], r['seed']) for r in RunStore(tmp_path / '01_tiny').records()] == [('base', 1), ('fast', 1)]
    assert 'gpu: trains on a CUDA GPU only' in capsys.readouterr().out


def test_an_interrupted_run_stops_the_loop_and_keeps_its_epochs(tmp_path):
    calls = []

    def interrupted(lr=0.5):
        calls.append(lr)
        err = KeyboardInterrupt()
        err.history = tiny_train(epochs=1)
        raise err

    with pytest.raises(KeyboardInterrupt):
        lab_in(tmp_path).run_rows(ROWS, interrupted, {})
    assert calls == [0.5]  # the loop did not go on to the next run
    assert RunStore(tmp_path / '01_tiny').records() == []
    assert (tmp_path / '01_tiny' / 'base__seed0.interrupted.json.keep').exists()


def test_every_stored_run_is_current_for_its_variant_row():
    # The rows moved from the notebooks to audit/variants/: their fingerprints must still match.
    for name in variants.names():
        lab = judge.open_lab(name, REPO / 'reports' / 'runs')
        stored = [r for r in lab.store.records() if r['row'] in lab.rows]
        assert sum(len(lab.records(row_id)) for row_id in lab.rows) == len(stored), name


def test_the_committed_reports_readme_lessons_and_summary_agree_with_the_stored_runs():
    assert problems(REPO) == []


def run_command(*args, **kw):
    return subprocess.run([sys.executable, '-m', 'audit', *args], capture_output=True, text=True,
                          cwd=kw.pop('cwd', REPO), timeout=kw.pop('timeout', 300), **kw)


def test_bad_input_is_one_line_before_anything_trains(tmp_path):
    done = run_command('07')
    assert done.returncode == 2 and "'07' names no variant" in done.stderr and 'Traceback' not in done.stderr
    done = run_command('02', '--data', str(tmp_path / 'nowhere'), '--runs', str(tmp_path / 'runs'))
    assert done.returncode == 1 and 'does not exist' in done.stderr and 'nothing was trained' in done.stderr
    # the tool found (on PYTHONPATH), run outside a checkout
    done = run_command('02', cwd=tmp_path, env={**os.environ, 'PYTHONPATH': str(REPO)})
    assert 'inside a checkout' in done.stderr and 'Traceback' not in done.stderr


@needs_data
def test_a_quick_run_on_the_cpu_stores_one_run_and_skips_the_gpu_rows(tmp_path):
    done = run_command('02', '--quick', '--rows', 'base', 'high lr cuda tf32', '--device', 'cpu',
                       '--train-only', '--runs', str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    stored = RunStore(tmp_path / '02_fashion_two_mlp_unfold.quick').records()
    assert [(r['row'], r['seed'], r['epochs']) for r in stored] == [('base', 0, 1)]
    assert 'high lr cuda tf32: trains on a CUDA GPU only' in done.stdout


@needs_data
def test_a_real_ctrl_c_ends_with_one_line_exit_130_and_the_report_of_what_is_stored(tmp_path):
    runs = tmp_path / 'runs'
    RunStore(runs / '01_fashion_mixer_conv_stem').put(
        json.loads((REPO / 'reports/runs/01_fashion_mixer_conv_stem/base__seed0.json').read_text()))
    child = subprocess.Popen([sys.executable, '-m', 'audit', '01', '--rows', 'base', '--device', 'cpu',
                              '--runs', str(runs)], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    for line in child.stdout:  # wait until seed 1 is training
        lines.append(line)
        if line.startswith('--- base, seed 1'):
            time.sleep(2)
            os.killpg(child.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole group
            break
    out = ''.join(lines) + child.stdout.read()
    assert child.wait(timeout=120) == 130, out
    assert out.count('interrupted: every finished run is stored') == 1 and 'Traceback' not in out
    assert (tmp_path / '01_fashion_mixer_conv_stem.md').exists()  # the report of what is stored
    assert [r['seed'] for r in RunStore(runs / '01_fashion_mixer_conv_stem').records()] == [0]


@needs_data
def test_a_killed_process_leaves_no_lock_and_the_next_command_sees_the_run_as_not_run(tmp_path):
    runs = tmp_path / 'runs'
    child = subprocess.Popen([sys.executable, '-m', 'audit', '01', '--rows', 'base', '--seed', '0',
                              '--device', 'cpu', '--train-only', '--runs', str(runs)], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    for line in child.stdout:
        if line.startswith('--- base, seed 0'):
            time.sleep(2)
            os.killpg(child.pid, signal.SIGKILL)  # no handler runs: as a crash or kill -9
            break
    child.wait(timeout=60)
    left = sorted(p.name for p in (runs / '01_fashion_mixer_conv_stem').iterdir())
    assert left == ['manifest.json']  # no lock, no half-written run
    again = run_command('01', '--rows', 'base', '--stored-only', '--train-only', '--runs', str(runs))
    assert again.returncode == 0 and 'base, seed 0: not run yet' in again.stdout
