import json
import math
import os
import socket
import subprocess
import sys

import pytest

from my_utils import experiments
from my_utils.experiments import ResultStore, compare_table, num_seeds, quick_mode, verdict


class FakeHistory:
    """Just the part of training.History that the store reads."""

    def __init__(self, test_acc, status='finished', train_loss=0.3):
        self.status, self.device = status, 'cpu'
        self.train_loss, self.train_acc, self.test_acc = [train_loss], [0.9], [test_acc]
        self.best_test_acc, self.best_epoch, self.examples_per_sec = test_acc, 1, 1000.0

    def final(self):
        return {'train_loss': self.train_loss[-1], 'train_acc': self.train_acc[-1],
                'test_acc': self.test_acc[-1]}

    def to_dict(self):
        return {'test_acc': self.test_acc}


def test_quick_mode_and_seeds_follow_the_environment(monkeypatch):
    monkeypatch.delenv('MY_UTILS_SEEDS', raising=False)
    monkeypatch.setenv('MY_UTILS_QUICK', '1')
    assert quick_mode() and num_seeds() == 1
    monkeypatch.setenv('MY_UTILS_QUICK', '0')
    assert not quick_mode() and num_seeds() == 3
    monkeypatch.setenv('MY_UTILS_SEEDS', '5')
    assert num_seeds() == 5
    monkeypatch.setenv('MY_UTILS_SEEDS', 'three')
    with pytest.raises(ValueError, match='MY_UTILS_SEEDS must be a whole number'):
        num_seeds()


def test_store_runs_each_row_and_seed_once_and_survives_a_restart(tmp_path, monkeypatch):
    monkeypatch.delenv('MY_UTILS_QUICK', raising=False)
    calls = []

    def train():
        calls.append(1)
        return FakeHistory(0.85)

    store = ResultStore('nb', directory=tmp_path)
    store.run('base', 0, train)
    store.run('base', 0, train)
    assert len(calls) == 1
    saved = json.loads((tmp_path / 'nb.json').read_text())
    assert saved['runs'][0]['test_acc'] == 0.85 and saved['runs'][0]['seed'] == 0
    restarted = ResultStore('nb', directory=tmp_path)
    restarted.run('base', 0, train)
    assert len(calls) == 1 and restarted.records('base')[0]['test_acc'] == 0.85


def test_store_keeps_quick_results_apart_and_memory_only_without_a_folder(tmp_path, monkeypatch):
    monkeypatch.setenv('MY_UTILS_QUICK', '1')
    monkeypatch.delenv('MY_UTILS_RESULTS', raising=False)
    assert ResultStore('nb').path is None
    assert ResultStore('nb', directory=tmp_path).path.name == 'nb.quick.json'


def test_interrupted_runs_are_not_stored(tmp_path):
    store = ResultStore('nb', directory=tmp_path)
    store.run('base', 0, lambda: FakeHistory(0.5, status='interrupted'))
    assert store.records('base') == []


def test_a_corrupt_results_file_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv('MY_UTILS_QUICK', raising=False)
    (tmp_path / 'nb.json').write_text('{not json')
    with pytest.raises(ValueError, match='move it away'):
        ResultStore('nb', directory=tmp_path)


def test_two_processes_share_one_results_file(tmp_path, monkeypatch):
    # Two stores on one file stand for two processes: each keeps the other's saved runs.
    monkeypatch.delenv('MY_UTILS_QUICK', raising=False)
    first, second = ResultStore('nb', directory=tmp_path), ResultStore('nb', directory=tmp_path)
    first.run('base', 0, lambda: FakeHistory(0.80))
    second.run('base', 1, lambda: FakeHistory(0.81))
    calls = []
    second.run('base', 0, lambda: calls.append(1) or FakeHistory(0.0))  # stored by `first`
    assert calls == []
    saved = json.loads((tmp_path / 'nb.json').read_text())
    assert [(r['seed'], r['test_acc']) for r in saved['runs']] == [(0, 0.80), (1, 0.81)]
    assert not list((tmp_path / 'nb.claims').iterdir())  # claims are released after each run
    assert [r['seed'] for r in first.records('base')] == [0, 1]  # sees what `second` stored


def test_a_run_claimed_by_a_live_process_is_skipped(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv('MY_UTILS_QUICK', raising=False)
    store = ResultStore('nb', directory=tmp_path)
    claim = store._claim_path('base', 2)
    claim.parent.mkdir()
    claim.write_text(f'{socket.gethostname()} {os.getppid()}')  # our parent: alive
    calls = []
    record = store.run('base', 2, lambda: calls.append(1) or FakeHistory(0.9))
    assert calls == [] and record['status'] == 'running elsewhere'
    assert math.isnan(record['test_acc']) and store.records('base') == []
    assert 'being trained by another process; skipped here' in capsys.readouterr().out


def test_a_stale_claim_is_taken_over_and_released_on_error(tmp_path, monkeypatch):
    monkeypatch.delenv('MY_UTILS_QUICK', raising=False)
    store = ResultStore('nb', directory=tmp_path)
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    claim = store._claim_path('base', 0)
    claim.parent.mkdir()
    claim.write_text(f'{socket.gethostname()} {dead.pid}')
    assert store.run('base', 0, lambda: FakeHistory(0.7))['test_acc'] == 0.7

    def fails():
        assert store._claim_path('base', 1).read_text() == f'{socket.gethostname()} {os.getpid()}'  # ours while running
        raise RuntimeError('boom')
    with pytest.raises(RuntimeError, match='boom'):
        store.run('base', 1, fails)
    assert not store._claim_path('base', 1).exists()


def test_concurrent_updates_of_one_results_file_lose_nothing(tmp_path):
    # Two processes append 150 items each to one file at the same time; without the lock,
    # read-modify-write races would drop some of them.
    script = (
        'import sys\n'
        'from my_utils.experiments import update_results\n'
        'for i in range(150):\n'
        '    update_results(sys.argv[1], lambda r: r.setdefault("items", []).append(sys.argv[2] + str(i)))\n')
    path = tmp_path / 'nb.json'
    writers = [subprocess.Popen([sys.executable, '-c', script, str(path), name]) for name in 'ab']
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    items = json.loads(path.read_text())['items']
    assert sorted(items) == sorted(f'{n}{i}' for n in 'ab' for i in range(150))
    assert not path.with_suffix('.lock').exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    (tmp_path / 'nb.lock').write_text(f'{socket.gethostname()} {dead.pid}')
    experiments.update_results(tmp_path / 'nb.json', lambda r: r.update(x=1))
    assert json.loads((tmp_path / 'nb.json').read_text()) == {'x': 1}


def test_the_last_error_and_the_runs_keep_each_other(tmp_path, monkeypatch):
    # The reproduce command records why a notebook stopped while a second process may still
    # be storing runs: neither write may drop the other's.
    from my_utils.report import record_error
    monkeypatch.delenv('MY_UTILS_QUICK', raising=False)
    store = ResultStore('nb', directory=tmp_path)
    store.run('base', 0, lambda: FakeHistory(0.8))
    record_error(tmp_path, 'nb', 'DataError: no data')
    store.run('base', 1, lambda: FakeHistory(0.7))
    saved = json.loads((tmp_path / 'nb.json').read_text())
    assert saved['last_error'] == 'DataError: no data'
    assert [r['seed'] for r in saved['runs']] == [0, 1]
    record_error(tmp_path, 'nb', None)
    saved = json.loads((tmp_path / 'nb.json').read_text())
    assert 'last_error' not in saved and len(saved['runs']) == 2


def records(*accs, status='finished'):
    return [{'test_acc': a, 'train_loss': 0.3, 'status': status} for a in accs]


def test_verdict_follows_the_spec_rule():
    assert verdict(0.86, records(0.85, 0.855, 0.86))[0] == 'reproduced'  # mean within 1.5 points
    assert verdict(0.86, records(0.80, 0.90))[0] == 'reproduced'  # inside min..max
    result, reason = verdict(0.86, records(0.80, 0.81, 0.82))
    assert result == 'not reproduced' and 'below' in reason
    assert verdict(0.86, [])[0] == 'not yet run'
    assert verdict(0.1, records(0.1, status='diverged'), failure=True)[0] == 'reproduced'
    assert verdict(0.1, records(0.8), failure=True)[0] == 'not reproduced'


def test_verdict_says_how_our_runs_failed_where_the_report_trained():
    diverged = [{'test_acc': 0.1, 'train_loss': float('nan'), 'status': 'diverged', 'epochs': 1}]
    result, reason = verdict(0.8451, diverged)
    assert result == 'not reproduced'
    assert reason.startswith('our run diverged (loss nan or inf in epoch 1), where the report trained')
    result, reason = verdict(0.8595, records(0.1, 0.1, 0.1))
    assert result == 'not reproduced' and reason.startswith('our runs stayed at chance')
    assert 'chance' not in verdict(0.8595, records(0.1, 0.8))[1]  # one seed learnt: the usual rule


def test_verdict_says_when_it_rests_on_fewer_than_three_seeds():
    assert verdict(0.86, records(0.86))[1].endswith('(1 seed, SPEC asks for 3)')
    assert 'SPEC asks' not in verdict(0.86, records(0.86, 0.86, 0.86))[1]


def test_compare_table_gives_no_verdict_in_quick_mode(tmp_path, monkeypatch):
    monkeypatch.setenv('MY_UTILS_QUICK', '1')
    store = ResultStore('nb', directory=tmp_path)
    store.run('base', 0, lambda: FakeHistory(0.11))
    table = compare_table([{'row': 'base', 'setup': 'lr 0.1', 'reported': 0.860}], store)
    assert table.splitlines()[2].endswith('| no verdict: quick mode (subset, 1 epoch) |')


def test_compare_table_lists_every_row(tmp_path, monkeypatch):
    monkeypatch.delenv('MY_UTILS_QUICK', raising=False)
    store = ResultStore('nb', directory=tmp_path)
    store.run('base', 0, lambda: FakeHistory(0.86))
    table = compare_table([{'row': 'base', 'setup': 'lr 0.1', 'reported': 0.860},
                           {'row': 'other', 'setup': 'lr 0.9', 'reported': 0.1, 'failure': True}], store)
    lines = table.splitlines()
    assert len(lines) == 4
    assert 'reproduced' in lines[2] and '0.8600' in lines[2]
    assert 'not yet run' in lines[3]
    assert table._repr_markdown_() == str(table)


def test_run_info_names_mode_and_device(monkeypatch):
    monkeypatch.setenv('MY_UTILS_QUICK', '1')
    assert experiments.run_info().startswith('mode: quick; device: ')


def test_a_checkpoint_metric_is_read_from_the_stored_history():
    # The 04 grid's number (best test accuracy at epochs 5/10/15) comes from the stored curve,
    # so a report written from the results file alone has it.
    accs = [0.5 + 0.01 * e for e in range(15)]
    accs[9] = 0.99  # epoch 10
    record = {'history': {'test_acc': accs}}
    assert experiments.metric_value(record, 'test_acc_5_10_15') == 0.99
    assert experiments.metric_value({'history': {'test_acc': [0.3, 0.4]}}, 'test_acc_5_10_15') == 0.4
    assert experiments.metric_value({'test_acc_5_10_15': 0.7}, 'test_acc_5_10_15') == 0.7
    assert experiments.metric_value({'history': {}}, 'test_acc_5_10_15') is None
    assert experiments.metric_value({'test_acc': 0.8}, 'best_test_acc') is None
