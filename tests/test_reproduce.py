"""The reproduce command: runs a notebook's rows once, keeps them across restarts, writes the report."""
import json
import os
import re
import socket
import shutil

import nbformat
import pytest

from my_utils import report, reproduce
from my_utils.experiments import ResultStore
from my_utils.report import write_report

# A notebook in the shape of the coursework ones, small enough to execute in seconds.
TINY_NOTEBOOK = [
    "import torch, my_utils as mu\n"
    "from torch import nn\n"
    "store = mu.ResultStore('01_tiny')\n"
    "X = torch.randn(64, 1, 4, 4); y = (X.mean(dim=(1, 2, 3)) > 0).long()\n"
    "it = mu.load_array((X, y), 16)",
    "for seed in range(mu.num_seeds()):\n"
    "    store.run('base', seed, lambda: mu.train_ch6(nn.Sequential(nn.Flatten(), nn.Linear(16, 2)),\n"
    "              it, it, 2, 0.5, 'cpu', animate=False))",
    "mu.compare_table([{'row': 'base', 'setup': 'tiny', 'reported': 0.9},\n"
    "                  {'row': 'never', 'setup': 'not run', 'reported': 0.5}], store)",
]


@pytest.fixture
def notebook_dir(tmp_path):
    folder = tmp_path / 'notebooks'
    folder.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in TINY_NOTEBOOK])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    nbformat.write(nb, folder / '01_tiny.ipynb')
    return folder


def test_reproduce_runs_every_seed_once_and_writes_the_report(notebook_dir, tmp_path, monkeypatch):
    for name in ('MY_UTILS_QUICK', 'MY_UTILS_SEEDS', 'MY_UTILS_RESULTS'):
        monkeypatch.delenv(name, raising=False)
    reports = tmp_path / 'reports'
    args = ['01', '--seeds', '2', '--reports', str(reports), '--notebook-dir', str(notebook_dir)]
    assert reproduce.main(args) == 0
    results = json.loads((reports / '01_tiny.json').read_text())
    assert [(r['row'], r['seed']) for r in results['runs']] == [('base', 0), ('base', 1)]
    assert [r['row'] for r in results['rows']] == ['base', 'never']
    report = (reports / '01_tiny.md').read_text()
    assert '| base | tiny | 0.9000 |' in report and 'n=2' in report
    assert ('not yet run: the reproduction has not reached this row yet (its stored runs took '
            'about 0 min each on cpu); run `python -m my_utils.reproduce 01 --seeds 2`, which '
            'resumes') in report
    assert (reports / '01_tiny_base.png').exists()
    executed = nbformat.read(reports / '01_tiny.ipynb', as_version=4)
    assert all(cell.get('execution_count') for cell in executed.cells)

    # A restart trains nothing that is already stored.
    dates = [r['date'] for r in results['runs']]
    assert reproduce.main(args) == 0
    again = json.loads((reports / '01_tiny.json').read_text())
    assert [r['date'] for r in again['runs']] == dates


def test_stored_only_executes_the_notebook_without_training(notebook_dir, tmp_path, monkeypatch):
    for name in ('MY_UTILS_QUICK', 'MY_UTILS_SEEDS', 'MY_UTILS_RESULTS', 'MY_UTILS_STORED_ONLY'):
        monkeypatch.delenv(name, raising=False)
    reports = tmp_path / 'reports'
    common = ['--reports', str(reports), '--notebook-dir', str(notebook_dir)]
    assert reproduce.main(['01', '--seeds', '1', *common]) == 0
    stored = (reports / '01_tiny.json').read_text()
    assert reproduce.main(['01', '--seeds', '2', '--stored-only', *common]) == 0
    assert (reports / '01_tiny.json').read_text() == stored  # seed 1 was not trained
    executed = (reports / '01_tiny.ipynb').read_text()
    assert 'row base, seed 1: not run yet (this execution shows stored runs only)' in executed
    assert 'n=1' in (reports / '01_tiny.md').read_text()


def test_a_failing_notebook_still_gets_a_report_that_says_why(notebook_dir, tmp_path, monkeypatch):
    monkeypatch.delenv('MY_UTILS_QUICK', raising=False)
    nb = nbformat.read(notebook_dir / '01_tiny.ipynb', as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell("raise mu.DataError('no KMNIST here')"))
    nbformat.write(nb, notebook_dir / '01_tiny.ipynb')
    reports = tmp_path / 'reports'
    readme = tmp_path / 'README.md'
    readme.write_text('# results\n<!-- results: written by python -m my_utils.reproduce; do not edit by hand -->\n'
                      'old table\n<!-- /results -->\nafter\n')
    assert reproduce.main(['01', '--reports', str(reports), '--notebook-dir', str(notebook_dir)]) == 1
    assert 'DataError: no KMNIST here' in (reports / '01_tiny.md').read_text()
    # --report-only keeps the reason, and the README's table says it too.
    assert reproduce.main(['01', '--report-only', '--reports', str(reports), '--notebook-dir', str(notebook_dir)]) == 0
    assert 'DataError: no KMNIST here' in (reports / '01_tiny.md').read_text()
    text = readme.read_text()
    assert 'old table' not in text and text.endswith('<!-- /results -->\nafter\n')
    assert '| 01_tiny | - | - | no rows stored yet |' in text


def test_unknown_notebook_names_list_the_choices(notebook_dir):
    with pytest.raises(SystemExit, match='choose from: all, 01_tiny'):
        reproduce.find_notebooks(['07'], notebook_dir)


def test_report_from_a_results_file(tmp_path):
    run = {'row': 'base', 'seed': 0, 'status': 'finished', 'epochs': 2, 'train_loss': 0.4,
           'train_acc': 0.85, 'test_acc': 0.86, 'best_test_acc': 0.861, 'best_epoch': 2,
           'device': 'cpu', 'torch': '2.x', 'wall_s': 12.0,
           'history': {'train_loss': [0.6, 0.4], 'train_acc': [0.8, 0.85], 'test_acc': [0.82, 0.86]}}
    rows = [{'row': 'base', 'setup': 'lr 0.1', 'reported': 0.865, 'metric': 'test_acc'}]
    (tmp_path / 'nb.json').write_text(json.dumps({'notebook': 'nb', 'rows': rows, 'runs': [run]}))
    text = write_report('nb', tmp_path, 'python -m my_utils.reproduce nb').read_text()
    assert '| base | lr 0.1 | 0.8650 | 0.8600 ± 0.0000 (0.8600..0.8600, n=1) | reproduced' in text
    assert '| base | 0 | finished | 2 | 0.4000 | 0.8500 | 0.8600 | 0.8610 (2) | cpu | 2.x | 12 s |' in text
    assert 'not a row of the table above' not in text
    # A run that is a step toward a row (04's validation run) is listed, and said to be one.
    step = dict(run, row='extra: validation')
    (tmp_path / 'nb.json').write_text(json.dumps({'notebook': 'nb', 'rows': rows, 'runs': [run, step]}))
    text = write_report('nb', tmp_path, 'python -m my_utils.reproduce nb').read_text()
    assert '| extra: validation | 0 | finished |' in text
    assert '`extra: validation`: not a row of the table above but a step toward one' in text


def test_a_row_without_a_number_says_why():
    from my_utils.report import _pending_reason
    cmd = 'python -m my_utils.reproduce 03 --seeds 3'
    assert _pending_reason(cmd, 'DataError: CIFAR-10 could not be loaded', []) == (
        'the data set is not on this machine (the error above); run '
        '`python -m my_utils.reproduce 03 --seeds 3` where it is')
    assert 'stopped before this row' in _pending_reason(cmd, 'ValueError: bad', [])
    runs = [{'status': 'finished', 'wall_s': 600, 'device': 'cpu'},
            {'status': 'finished', 'wall_s': 1200, 'device': 'cpu'},
            {'status': 'diverged', 'wall_s': 5, 'device': 'cpu'}]
    assert _pending_reason(cmd, None, runs).startswith(
        'the reproduction has not reached this row yet (its stored runs took about 15 min each '
        'on cpu)')


def test_a_readme_row_without_a_number_names_the_missing_data_set():
    from my_utils.report import _readme_pending
    cmd = 'python -m my_utils.reproduce 05'
    missing = 'DataError: KMNIST could not be loaded from /data/KMNIST/raw: missing train-images'
    assert _readme_pending(missing, cmd) == 'no KMNIST here; run `python -m my_utils.reproduce 05` where it is'
    assert _readme_pending('ValueError: bad shape', cmd) == (
        'the full run stopped with ValueError; see the report')
    assert _readme_pending(None, cmd) == 'run `python -m my_utils.reproduce 05`'


@pytest.mark.skipif(not os.environ.get('MY_UTILS_DATA'),
                    reason='real Fashion-MNIST not available: set MY_UTILS_DATA')
def test_a_notebook_finishes_while_another_process_trains_some_of_its_rows(tmp_path, monkeypatch):
    # 04 reads rows back for its grid table and chains its extra row on a validation run: with
    # those rows claimed by a live process (this one), it must still run to its end.
    monkeypatch.setenv('MY_UTILS_QUICK', '1')
    name = '04_fashion_patch_mlp_tuning'
    held = ResultStore(name, directory=tmp_path)
    for row in ('4: b512 lr0.1', 'extra: validation'):
        claim = held._claim_path(row, 0)
        claim.parent.mkdir(exist_ok=True)
        claim.write_text(f'{socket.gethostname()} {os.getpid()}')
    assert reproduce.main([name[:2], '--quick', '--reports', str(tmp_path)]) == 0
    rows = {r['row'] for r in json.loads((tmp_path / f'{name}.quick.json').read_text())['runs']}
    assert {'4: b512 lr0.2', 'base'} <= rows
    assert not rows & {'4: b512 lr0.1', 'extra: validation', 'extra'}
    executed = (tmp_path / f'{name}.quick.ipynb').read_text()
    assert 'the validation run is not stored yet' in executed


REPO_REPORTS = reproduce.REPO / 'reports'
WRITTEN_LINE = re.compile(r'^Written \d{4}-\d\d-\d\d by `([^`]+)`', re.M)


@pytest.mark.parametrize('report_name', sorted(p.name for p in REPO_REPORTS.glob('[0-9][0-9]_*.md')))
def test_each_committed_report_agrees_with_its_results_file(report_name, tmp_path):
    # What --report-only writes from the committed results file must be the committed report,
    # up to the date it was written: no number in reports/ may come from anywhere else.
    committed = (REPO_REPORTS / report_name).read_text()
    stem = report_name[:-len('.md')]
    quick = stem.endswith('.quick')
    name = stem[:-len('.quick')] if quick else stem
    for path in REPO_REPORTS.glob(f'{name}*'):
        if path.suffix == '.json':
            shutil.copy(path, tmp_path)
        elif path.suffix == '.ipynb':
            (tmp_path / path.name).touch()  # the report only says whether it is there
    command = WRITTEN_LINE.search(committed).group(1)
    regenerated = write_report(name, tmp_path, command, quick=quick).read_text()
    undated = lambda text: WRITTEN_LINE.sub('Written', text)  # noqa: E731
    assert undated(regenerated) == undated(committed), (
        f'reports/{report_name} differs from its results file: run '
        f'`python -m my_utils.reproduce {name[:2]} --report-only`')


def test_the_readme_results_table_agrees_with_the_results_files():
    readme = (reproduce.REPO / 'README.md').read_text()
    start, end = readme.index(report.README_START), readme.index(report.README_END)
    assert readme[start + len(report.README_START):end].strip() == report.results_table(REPO_REPORTS)
