"""benchmarks/gpu_session.py: its smoke mode runs every step on the CPU and writes every file.

The smoke session (about a minute on two busy cores) runs once for the module; each test reads
one of its files. Nothing here checks a speed: only that each result is written and well formed.
"""
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from my_utils.synthetic import write_fake_kmnist

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / 'benchmarks' / 'gpu_session.py'
STORED = '02_fashion_two_mlp_unfold.quick'
SMOKE_JOBS = ['02_high_lr__seed0', '02_high_lr_tf32__seed0', '02_base__seed1']


@pytest.fixture(scope='module')
def gpu_session():
    spec = importlib.util.spec_from_file_location('gpu_session', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def fake_data(tmp_path_factory):
    # A small idx-format set in Fashion-MNIST's place: the audit's quick runs read it in seconds.
    root = write_fake_kmnist(tmp_path_factory.mktemp('data'), n_train=2000, n_test=1000)
    shutil.move(str(root / 'KMNIST'), str(root / 'FashionMNIST'))
    return root


def session(out, data, *extra, timeout=300):
    env = dict(os.environ, MY_UTILS_DATA=str(data))
    return subprocess.run([sys.executable, str(SCRIPT), '--device', 'cpu', '--smoke', '--out',
                           str(out), '--runs-from', str(out.parent / 'no_runs'), *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='module')
def smoke(tmp_path_factory, fake_data):
    out = tmp_path_factory.mktemp('session') / 'out'
    done = session(out, fake_data)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def read(out, name):
    return json.loads((out / name).read_text())


def test_session_json_has_every_step_and_the_base_run_against_the_report(smoke):
    data = read(smoke, 'session.json')
    assert list(data['steps']) == ['a_speed', 'b_base_run', 'c_queue', 'd_full_size']
    assert all(step['status'] == 'done' for step in data['steps'].values())
    assert data['meta']['device'] == 'cpu' and data['meta']['smoke'] is True
    base = data['base_run']
    assert base['rc'] == 0 and base['status'] == 'finished' and base['epochs'] == 1
    assert base['reported'] == {'wall_s': 719.6, 'examples_per_sec': 21217.8, 'device': 'cuda:0'}
    assert base['report_wall_over_ours'] == pytest.approx(719.6 / base['wall_s'], rel=0.01)
    assert data['total_s'] > 0


def test_queue_runs_stored_and_the_concurrency_chosen(smoke):
    data = read(smoke, 'session.json')
    assert [e['job'] for e in data['queue']] in (SMOKE_JOBS, [SMOKE_JOBS[1], SMOKE_JOBS[0],
                                                             SMOKE_JOBS[2]])
    assert all(e['rc'] == 0 and e['stored'] and e['epochs'] == 1 for e in data['queue'])
    assert data['not_started'] == []
    concurrency = data['concurrency']
    assert set(concurrency['probe_examples_per_s']) == {'1', '2'}
    assert concurrency['procs'] in (1, 2)


def test_speed_json_holds_both_batch_sizes_with_both_loops(smoke):
    speed = read(smoke, 'speed.json')['invocations']
    for name, batch in (('batch 64', 64), ('batch 256', 256)):
        rows = {r['key']: r for r in speed[name]['rows']}
        assert speed[name]['status'] == 'done' and set(rows) == {'softmax', 'lenet'}
        assert all(r['batch'] == batch and r['classic'] > 0 and r['fast'] > 0 for r in rows.values())
        # channels_last where the net has convolutions only
        assert rows['lenet']['channels_last'] > 0 and 'channels_last' not in rows['softmax']
    assert speed['compiled']['status'].startswith('skipped')


def test_full_size_json_has_an_epoch_of_03_and_05(smoke):
    full = read(smoke, 'full_size.json')
    assert set(full) == {'03', '05'}
    for key, result in full.items():
        assert result['notebook'].startswith(key) and result['tiny'] is True
        assert result['device'] == 'cpu' and result['epoch_s'] > 0 and result['examples_per_s'] > 0


def test_runs_tar_holds_every_new_stored_run_and_the_logs_tar_every_process(smoke):
    with tarfile.open(smoke / 'runs.tar.gz') as tar:
        names = sorted(tar.getnames())
        records = [json.load(tar.extractfile(n)) for n in names]
    assert names == sorted(f'{STORED}/{n}__seed{s}.json' for n, s in
                           [('base', 0), ('base', 1), ('high_lr', 0), ('high_lr_tf32', 0)])
    assert {(r['row'], r['seed']) for r in records} == {
        ('base', 0), ('base', 1), ('high lr', 0), ('high lr tf32', 0)}
    with tarfile.open(smoke / 'joblogs.tar.gz') as tar:
        logs = set(tar.getnames())
    assert {f'{j}.log' for j in SMOKE_JOBS + ['02_base__seed0']} <= logs
    assert {'full_size_03.log', 'full_size_05.log', 'speed_batch_64.log'} <= logs
    assert not list(smoke.glob('.*.tmp'))  # every file written through a rename


def test_a_queue_that_cannot_fit_its_budget_starts_nothing(tmp_path, fake_data):
    out = tmp_path / 'out'
    done = session(out, fake_data, '--skip', 'speed', 'base', 'full', '--procs', '1',
                   '--budget-s', '30', timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    data = read(out, 'session.json')
    assert data['queue'] == [] and data['not_started'] == SMOKE_JOBS
    assert data['steps']['a_speed']['status'] == 'skipped'


def test_queue_order_lr_09_first_alternating_rows(gpu_session):
    jobs = gpu_session.queue(cuda=True, smoke=False)
    first = [(j.row, j.seed) for j in jobs[:16]]
    assert first == [(row, seed) for seed in range(8)
                     for row in ('high lr cuda fp32', 'high lr cuda tf32')]
    assert not any(j.retrain for j in jobs[:16])
    assert [(j.variant, j.seed) for j in jobs[16:24]] == [
        ('02', 1), ('02', 2), ('01', 0), ('01', 1), ('01', 2), ('04', 0), ('04', 1), ('04', 2)]
    assert all(j.row == 'base' and j.retrain for j in jobs[16:24])
    # then the seeds added where a verdict hinges on a few runs' noise, never retrained
    assert [(j.row, j.seed) for j in jobs[24:]] == (
        [('plain lr 0.15', s) for s in range(3, 10)]
        + [(r, s) for s in (8, 9) for r in ('high lr', 'high lr tf32')]
        + [('high lr after base', 3), ('high lr after base', 4)])
    assert not any(j.retrain for j in jobs[24:])
    argv = jobs[0].argv('cuda', '/r', quick=False)
    assert argv[1:] == ['-m', 'audit', '02', '--rows', 'high lr cuda fp32', '--seed', '0',
                        '--device', 'cuda', '--train-only', '--runs', '/r']


def test_choose_procs_takes_the_fewest_within_ten_percent_of_the_best(gpu_session):
    assert gpu_session.choose_procs({1: 10, 4: 35, 8: 60, 16: 64}, 16) == 8
    assert gpu_session.choose_procs({1: 10, 4: 35, 8: 60, 16: 64}, 6) == 6
    assert gpu_session.choose_procs({1: 10, 2: None}, 16) == 1
    assert gpu_session.choose_procs({}, 16) == 1


def test_stop_interrupts_every_process_at_once_then_kills_what_remains(gpu_session):
    code = 'import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)'
    stubborn = subprocess.Popen([sys.executable, '-c', code])
    polite = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    time.sleep(1.0)  # both past their start-up, so the Ctrl-C reaches Python's handler
    gpu_session.stop(stubborn, polite, grace=2)
    assert polite.returncode == -signal.SIGINT  # ended by the Ctrl-C itself
    assert stubborn.returncode == -signal.SIGKILL  # ignored the Ctrl-C: killed after the grace


def test_unpack_puts_runs_and_results_where_the_repository_keeps_them(gpu_session, smoke, tmp_path):
    returned = tmp_path / 'returned'
    shutil.copytree(smoke, returned)
    data = read(returned, 'session.json')
    data['meta']['commit_given'] = 'abc123'
    (returned / 'session.json').write_text(json.dumps(data))
    repo = tmp_path / 'repo'
    names = gpu_session.unpack(returned, repo=repo)
    assert len(names) == 4
    for name in names:
        record = json.loads((repo / 'reports' / 'runs' / name).read_text())
        assert record['commit'] is not None  # the tree's own commit kept, else the one given
    results = repo / 'benchmarks' / 'results'
    assert json.loads((results / 'full_size_epoch_03_cpu.json').read_text())['tiny'] is True
    assert 'batch 64' in json.loads((results / 'gpu_session_speed.json').read_text())['invocations']


def test_unpack_refuses_a_tar_with_anything_but_stored_runs(gpu_session, smoke, tmp_path):
    returned = tmp_path / 'returned'
    shutil.copytree(smoke, returned)
    evil = tmp_path / 'evil.json'
    evil.write_text('{}')
    with tarfile.open(returned / 'runs.tar.gz', 'w:gz') as tar:
        tar.add(evil, arcname='../evil.json')
    with pytest.raises(SystemExit, match='no stored run'):
        gpu_session.unpack(returned, repo=tmp_path / 'repo')
    assert not (tmp_path / 'repo' / 'reports').exists()
