"""The distribution: a wheel built from the repository's files holds the library and nothing else.

The quick test builds the wheel (seconds) and reads it. The slow one installs it in a fresh
virtual environment and trains one epoch there (minutes: it installs torch); it runs only with
MY_UTILS_SLOW=1, e.g. `MY_UTILS_SLOW=1 python -m pytest tests/test_package.py`.
"""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import my_utils

ROOT = Path(__file__).resolve().parent.parent
SLOW = pytest.mark.skipif(os.environ.get('MY_UTILS_SLOW') != '1',
                          reason='installs torch in a fresh venv (minutes); set MY_UTILS_SLOW=1')
# What the library may not pull in: the notebook and audit tooling.
TOOLING = ('nbformat', 'nbclient', 'jupyter', 'scipy', 'nbval', 'ipykernel')


def repository_copy(dest):
    """The files git knows (committed or new, not ignored): what a clean checkout would hold."""
    files = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split('\n')
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    if shutil.which('git') is None or not (ROOT / '.git').exists():
        pytest.skip('needs a git checkout')
    source = repository_copy(tmp_path_factory.mktemp('checkout'))
    out = tmp_path_factory.mktemp('wheel')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--quiet', '--no-deps',
                    '--no-build-isolation', '-w', str(out), str(source)], check=True)
    (path,) = out.glob('*.whl')
    return path


def test_the_wheel_holds_my_utils_and_its_licence_only(wheel):
    assert wheel.name == f'd2l_course_utils-{my_utils.__version__}-py3-none-any.whl'
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split('/')[0] for name in names}
    assert top == {'my_utils', f'd2l_course_utils-{my_utils.__version__}.dist-info'}
    assert 'my_utils/train6.py' in names and not any('repro' in n or 'audit' in n for n in names)
    assert any(n.endswith('LICENSE') for n in names)
    metadata = zipfile.ZipFile(wheel).read(
        f'd2l_course_utils-{my_utils.__version__}.dist-info/METADATA').decode()
    requires = [line.split(': ', 1)[1] for line in metadata.splitlines()
                if line.startswith('Requires-Dist: ') and 'extra ==' not in line]
    assert 'torch>=2.13' in requires and 'torchvision>=0.28' in requires
    assert not any(r.split('>')[0].split('=')[0].strip() in TOOLING for r in requires)


TRAIN_ONE_EPOCH = '''
import torch, my_utils as mu
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
torch.manual_seed(0)
X = torch.randn(256, 8)
y = (X[:, 0] > 0).long()
train = DataLoader(TensorDataset(X, y), batch_size=32)
test = DataLoader(TensorDataset(X[:64], y[:64]), batch_size=32)
h = mu.train_ch6(nn.Sequential(nn.Linear(8, 2)), train, test, 1, 0.5, 'cpu', animate=False)
assert h.status == 'finished' and h.epochs == 1, h
print('trained', mu.__version__, h.summary())
'''


@SLOW
def test_a_fresh_venv_installs_the_wheel_and_trains_one_epoch(wheel, tmp_path):
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    python = str(venv / 'bin' / 'python')
    pip = [python, '-m', 'pip', 'install', '--quiet']
    # torch as this machine has it (the lab's pinned build), then the wheel and what it needs.
    subprocess.run(pip + ['torch==2.14.1', 'torchvision==0.29.1'], check=True)
    subprocess.run(pip + [str(wheel)], check=True)
    listed = subprocess.run([python, '-m', 'pip', 'list'], capture_output=True, text=True,
                            check=True).stdout.lower()
    assert not [name for name in TOOLING if f'\n{name} ' in listed]
    run = subprocess.run([python, '-c', TRAIN_ONE_EPOCH], capture_output=True, text=True,
                         cwd=tmp_path)  # not the checkout: the installed copy is imported
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == 'training on cpu'  # train_ch6's own lines come first
    assert run.stdout.splitlines()[-1].startswith(
        f'trained {my_utils.__version__} finished, 1 epoch on cpu')
