"""Smoke test of benchmarks/train_speed.py: it runs and prints both columns (no timing checks)."""
import importlib.util
import re
import shutil
from pathlib import Path

import pytest

from audit import models
from my_utils.synthetic import write_fake_kmnist

BENCHMARKS = Path(__file__).resolve().parents[1] / 'benchmarks'


def load_script(name):
    # The benchmarks are scripts, not a package: import one from its file.
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def train_speed():
    return load_script('train_speed')


@pytest.fixture
def fake_fashion(tmp_path, monkeypatch):
    # A small idx-format set stands in for Fashion-MNIST (same file names, same format), so the
    # test needs no download and takes seconds.
    root = write_fake_kmnist(tmp_path / 'data', n_train=256, n_test=64)
    shutil.move(str(root / 'KMNIST'), str(root / 'FashionMNIST'))
    monkeypatch.setenv('MY_UTILS_DATA', str(root))
    return root


def test_two_steps_of_softmax_regression_print_both_columns(train_speed, fake_fashion, capsys):
    rows = train_speed.main(['--device', 'cpu', '--models', 'softmax', '--steps', '2',
                             '--repeats', '1', '--warmup', '1', '--n-train', '256'])
    out = capsys.readouterr().out
    assert 'classic ex/s' in out and 'fast ex/s' in out and 'peak RSS MiB' in out
    assert out.startswith('# device cpu')
    (row,) = rows
    assert row['steps'] == 2 and row['params'] == 7850 and row['batch'] == 64
    assert row['classic'] > 0 and row['fast'] > 0


def test_markdown_table_and_model_parameter_counts(train_speed):
    row = {'model': 'softmax regression', 'key': 'softmax', 'params': 7850, 'batch': 64,
           'steps': 2, 'classic': 1000.0, 'fast': 12000.0, 'ratio': 12.0, 'peak_mib': 500.0,
           'note': ''}
    table = train_speed.format_table([row], train_speed.torch.device('cpu'), markdown=True)
    assert table.splitlines()[0].startswith(
        '| model | params | batch | steps | classic ex/s | fast ex/s | ratio |')
    assert '| softmax regression | 7,850 | 64 | 2 | 1,000 | 12,000 | 12.00x |' in table
    assert 'PASS' in train_speed.target_lines([row], train_speed.torch.device('cpu'))[0]
    # the coursework models are the notebooks' (tests/test_models.py checks the builders)
    assert [train_speed.MODELS[k][1] for k in ('01', '02', '03', '04', '05')] == [
        models.net_01, models.net_02, models.net_03, models.net_04, models.net_05]
    assert sum(p.numel() for p in train_speed.MODELS['02'][1]().parameters()) == 312_418


@pytest.mark.skipif(shutil.which('g++') is None and shutil.which('clang++') is None,
                    reason='torch.compile on the CPU needs a C++ compiler')
def test_compile_adds_a_third_column(train_speed, fake_fashion, capsys):
    rows = train_speed.main(['--device', 'cpu', '--models', 'softmax', '--steps', '2',
                             '--repeats', '1', '--warmup', '2', '--n-train', '256', '--compile'])
    out = capsys.readouterr().out
    assert 'fast+compile ex/s' in out
    (row,) = rows
    assert row['compiled'] > 0 and row['ratio_compiled'] == row['compiled'] / row['classic']


def test_channels_last_adds_a_column_and_a_target_line(train_speed, fake_fashion, capsys):
    rows = train_speed.main(['--device', 'cpu', '--models', 'lenet', '--steps', '2',
                             '--repeats', '1', '--warmup', '2', '--n-train', '256',
                             '--channels-last'])
    out = capsys.readouterr().out
    assert 'fast+channels_last ex/s' in out
    assert re.search(r'target LeNet.*: fast\+channels_last/classic \d+\.\d\dx', out)
    (row,) = rows
    assert row['channels_last'] > 0
    assert row['ratio_channels_last'] == row['channels_last'] / row['classic']


# ---------------------------------------------------------------- full_size_epoch.py

@pytest.fixture(scope='module')
def full_size_epoch():
    return load_script('full_size_epoch')


def test_full_size_epoch_trains_the_notebooks_models_at_their_real_sizes(full_size_epoch):
    s03, s05 = full_size_epoch.SETUPS['03'], full_size_epoch.SETUPS['05']
    assert s03['build'] is models.net_03 and s05['build'] is models.net_05
    assert (s03['n_train'], s03['n_test'], s03['shape'], s03['batch']) == (50_000, 10_000, (3, 32, 32), 64)
    assert (s05['n_train'], s05['n_test'], s05['shape'], s05['batch']) == (60_000, 10_000, (1, 28, 28), 128)
    assert sum(e for _, e, _ in s03['rows']) == 120 and sum(e for _, e, _ in s05['rows']) == 120


@pytest.mark.parametrize('max_minutes, whole', [('0', False), ('1000', True)])
def test_full_size_epoch_times_or_extrapolates_and_writes_json(full_size_epoch, monkeypatch,
                                                               tmp_path, max_minutes, whole):
    # A small model and data set keep this to seconds; the real sizes are checked above.
    small = dict(full_size_epoch.SETUPS['05'], n_train=512, n_test=256,
                 build=lambda: models.net_05(hidden=32))
    monkeypatch.setitem(full_size_epoch.SETUPS, '05', small)
    out = tmp_path / 'r.json'
    result = full_size_epoch.main(['05', '--probe', '1', '--batches', '2', '--test-batches', '1',
                                   '--max-minutes', max_minutes, '--out', str(out)])
    assert result['whole_epoch_timed'] is whole
    assert result['timed_train_batches'] == (4 if whole else 2)
    assert result['epoch_s'] > 0 and result['peak_rss_mib'] > 0 and out.exists()
    assert result['full_run_h'] == pytest.approx(sum(r['hours'] for r in result['rows']), abs=0.3)
