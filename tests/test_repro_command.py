"""The reproduction command: preflight checks, executed copies, Ctrl-C, and the committed reports."""
import json
from pathlib import Path

import nbformat
import pytest

from my_utils.repro import __main__ as command
from my_utils.repro.consistency import copy_problems, problems
from my_utils.repro.migrate import migrate

REPO = Path(__file__).resolve().parent.parent

TINY = [
    "import torch, my_utils as mu\nfrom torch import nn\nfrom my_utils import repro\n"
    "lab = repro.Lab('01_tiny', quick=True)\n"
    "X = torch.randn(64, 4); y = (X[:, 0] > 0).long(); it = mu.load_array((X, y), 16)",
    "def train(lr=0.5):\n"
    "    return mu.train_ch6(nn.Linear(4, 2), it, it, 2, lr, 'cpu', animate=False, verbose=False)\n"
    "ROWS = [repro.row('base', 'tiny', 0.9), repro.row('never', 'never run', 0.5, lr=0.1)]\n"
    "lab.run_rows(ROWS, train, {'model': 'linear'})",
    "lab.table()",
]


def tiny_repo(tmp_path, cells=TINY):
    (tmp_path / 'notebooks').mkdir()
    (tmp_path / 'reports').mkdir()
    (tmp_path / 'data').mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in cells])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    nbformat.write(nb, tmp_path / 'notebooks' / '01_tiny.ipynb')
    return tmp_path


def test_the_command_runs_the_chosen_rows_stores_each_run_and_writes_the_report(tmp_path, monkeypatch):
    repo = tiny_repo(tmp_path)
    monkeypatch.chdir(repo / 'notebooks')  # found from a folder inside the checkout
    assert command.main(['01', '--seeds', '2', '--rows', 'base', '--data', '../data']) == 0
    runs = sorted(p.name for p in (repo / 'reports/runs/01_tiny').glob('*__seed*.json'))
    assert runs == ['base__seed0.json', 'base__seed1.json']
    assert json.loads((repo / 'reports/runs/01_tiny/base__seed0.json').read_text())['fingerprint']
    report = (repo / 'reports/01_tiny.md').read_text()
    assert '| base | tiny | 0.9000 |' in report and 'open: ' in report and '(3 needed)' in report
    assert '| never | never run | 0.5000 | - | not yet run' in report
    assert copy_problems(repo / 'reports/01_tiny.ipynb', repo / 'reports/01_tiny.md') == []


def test_an_unknown_variant_lists_the_valid_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_repo(tmp_path))
    with pytest.raises(SystemExit, match="'07' names no notebook; choose from: all, 01_tiny"):
        command.main(['07'])


def test_nothing_trains_when_the_data_folder_is_missing_or_reports_cannot_be_written(tmp_path, monkeypatch):
    repo = tiny_repo(tmp_path)
    monkeypatch.chdir(repo)
    with pytest.raises(SystemExit, match=f'the data folder {repo}/nowhere does not exist'):
        command.main(['01', '--data', 'nowhere'])  # relative: resolved against the caller's folder
    (repo / 'reports' / 'runs').rmdir()
    (repo / 'reports' / 'runs').write_text('a file where the runs folder should be')
    with pytest.raises(SystemExit, match=f'cannot write to {repo}/reports'):
        command.main(['01', '--data', 'data'])
    assert not (repo / 'reports' / '01_tiny.ipynb').exists()


def test_outside_a_checkout_the_command_says_where_to_run_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match='run this command inside a checkout'):
        command.main(['01'])


def test_ctrl_c_ends_with_one_line_and_the_report_of_what_is_stored(tmp_path, monkeypatch, capsys):
    repo = tiny_repo(tmp_path)
    monkeypatch.chdir(repo)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr('my_utils.repro.execute.execute_notebook', interrupted)
    assert command.main(['01', '--data', 'data']) == 130
    out = capsys.readouterr().out
    assert 'interrupted: every finished run is stored; writing the reports from them' in out
    assert 'Traceback' not in out and (repo / 'reports' / '01_tiny.md').exists()


def test_a_cell_after_a_failure_shows_nothing_in_the_executed_copy(tmp_path, monkeypatch):
    repo = tiny_repo(tmp_path, ["print('first')", "raise ValueError('stopped here')", "print('after')"])
    path = repo / 'notebooks' / '01_tiny.ipynb'
    nb = nbformat.read(path, as_version=4)  # a committed copy with an older run's outputs
    nb.cells[2].outputs = [nbformat.v4.new_output('stream', name='stdout', text='old output\n')]
    nbformat.write(nb, path)
    monkeypatch.chdir(repo)
    assert command.main(['01', '--data', 'data']) == 1
    copy = nbformat.read(repo / 'reports' / '01_tiny.ipynb', as_version=4)
    assert copy.cells[1].outputs[0]['ename'] == 'ValueError'
    assert copy.cells[2].outputs == []
    assert 'ValueError: stopped here' in (repo / 'reports' / '01_tiny.md').read_text()


def test_the_committed_reports_readme_table_and_executed_copies_agree_with_the_stored_runs():
    names = sorted(p.stem for p in (REPO / 'notebooks').glob('[0-9][0-9]_*.ipynb'))
    assert problems(REPO, names) == []


OLD_RUNS = {  # every run stored before the one-file-per-run store (commit 82d314d): none lost
    '01_fashion_mixer_conv_stem': {'base': 3, 'patch4': 1, 'residual': 1},
    '02_fashion_two_mlp_unfold': {'base': 3, 'batch 256': 1, 'dropout applied': 1, 'high lr': 1, 'low lr': 1,
                                  **{f'sgd lr {lr} m {m} wd {wd}': 1 for lr, m, wd in [
                                      (0.1, 0.9, 0.0), (0.15, 0.95, 0.0), (0.2, 0.99, 0.0), (0.2, 0.99, 0.01),
                                      (0.2, 0.99, 0.05), (0.2, 0.99, 0.09), (0.5, 0.99, 0.09), (0.9, 0.99, 0.09)]}},
    '04_fashion_patch_mlp_tuning': {**{r: 1 for r in ['1', '2', '3', '5', '6', '7', '8', '9', 'extra',
                                                      'extra: validation']},
                                    **{f'4: b{b} lr{lr}': 1 for b in (128, 256, 512) for lr in (0.01, 0.1, 0.2)},
                                    'base': 3},
}


def test_the_42_runs_of_the_old_results_files_are_all_in_the_store():
    total = 0
    for name, rows in OLD_RUNS.items():
        folder = REPO / 'reports/runs' / name
        # A stale old run that was trained again is kept beside its new run, not lost.
        kept = [*folder.glob('*__seed*.json'), *folder.glob('*__seed*.stale-*.json.keep')]
        stored = [json.loads(p.read_text()) for p in kept]
        for row_id, n in rows.items():
            dated = [r for r in stored if r['row'] == row_id and r['date'] < '2026-12-01' and r['seed'] < n]
            assert len(dated) == n, (name, row_id)
            total += n
    assert total == 42


def test_migration_keeps_the_storing_commit_and_loses_nothing(tmp_path):
    old = tmp_path / 'old.json'
    old.write_text(json.dumps({'runs': [{'row': 'base', 'seed': s, 'date': f'2026-11-0{s + 1}', 'device': 'cpu',
                                         'status': 'finished'} for s in range(3)]}))
    (tmp_path / 'runs' / 'nb').mkdir(parents=True)
    (tmp_path / 'runs' / 'nb' / 'manifest.json').write_text(json.dumps(
        {'rows': [{'row': 'base', 'fingerprint': 'abc', 'setup_values': {}}]}))
    assert migrate('nb', old, tmp_path / 'runs', tmp_path, checked='HEAD', commit='c0ffee') == 3
    assert migrate('nb', old, tmp_path / 'runs', tmp_path, checked='HEAD', commit='c0ffee') == 0  # idempotent
    runs = [json.loads(p.read_text()) for p in sorted((tmp_path / 'runs' / 'nb').glob('*__seed*.json'))]
    assert [(r['seed'], r['commit'], r['fingerprint']) for r in runs] == [(0, 'c0ffee', 'abc'), (1, 'c0ffee', 'abc'), (2, 'c0ffee', 'abc')]
