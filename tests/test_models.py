"""my_utils.repro.models builds the networks the notebooks build.

The reference is each committed notebook's stored output of `print(net)` and of its parameter
count: reading it costs nothing (no notebook is executed), and when a notebook's model changes
and is re-run, this test says that models.py (and so the benchmark) has drifted from it.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from my_utils.repro import models

NOTEBOOKS = Path(__file__).resolve().parents[1] / 'notebooks'

# (notebook, the variable it prints, the same network from models.py)
CASES = [
    ('01_fashion_mixer_conv_stem', 'net', models.net_01),
    ('02_fashion_two_mlp_unfold', 'net', models.net_02),
    ('03_cifar10_mixed_conv_blocks', 'net', models.net_03),
    ('04_fashion_patch_mlp_tuning', 'net', models.net_04),
    ('04_fashion_patch_mlp_tuning', 'final_net', lambda: models.net_04(bn=True, dropout=0.01)),
    ('05_kmnist_patch_mixer', 'net', models.net_05),
]


def printed_net(notebook, var):
    """(printed module tree, printed parameter count) from the cell that runs print(var)."""
    cells = json.loads((NOTEBOOKS / f'{notebook}.ipynb').read_text())['cells']
    call = re.compile(rf'^print\({var}\)$', re.M)
    cell = next((c for c in cells if c['cell_type'] == 'code'
                 and call.search(''.join(c['source']))), None)
    assert cell is not None, f'{notebook} has no cell running print({var})'
    text = ''.join(''.join(o.get('text', '')) for o in cell['outputs']
                   if o['output_type'] == 'stream')
    # The tree runs from its first line to the first unindented ')'.
    tree = re.search(r'^\w+\(\n.*?^\)$', text, re.M | re.S)
    count = re.search(r'^parameters: ([\d,]+)$', text, re.M)
    assert tree and count, f'{notebook}: no stored print({var}) output with a parameter count'
    return tree.group(0), int(count.group(1).replace(',', ''))


def n_params(net):
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize('notebook, var, build', CASES, ids=[f'{n[:2]}-{v}' for n, v, _ in CASES])
def test_builder_prints_what_the_notebook_printed(notebook, var, build):
    tree, count = printed_net(notebook, var)
    net = build()
    assert str(net) == tree
    assert n_params(net) == count


@pytest.mark.parametrize('build, shape', [
    (models.net_01, (2, 1, 28, 28)), (lambda: models.net_01(patch_size=4, residual=True),
                                      (2, 1, 28, 28)),
    (lambda: models.net_02(dropout=0.1), (2, 1, 28, 28)),
    (lambda: models.net_03(width=16), (2, 3, 32, 32)),
    (lambda: models.net_04(bn=True, dropout=0.01), (2, 1, 28, 28)),
    (lambda: models.net_05(hidden=64), (2, 1, 28, 28))])
def test_builders_and_their_options_give_class_scores(build, shape):
    torch.manual_seed(0)
    assert build()(torch.rand(shape)).shape == (2, 10)


def test_options_change_what_they_say():
    assert n_params(models.net_01(residual=True)) == n_params(models.net_01())
    assert n_params(models.net_01(patch_size=4)) == 68_197  # 01 asserts this count
    assert n_params(models.net_03(width=16)) == 3_810_900  # the benchmark's CPU variant
    with pytest.raises(ValueError):
        models.net_01(patch_size=5)


def test_import_my_utils_leaves_repro_out():
    # repro is tooling, not part of the student's `mu.` namespace.
    code = 'import sys, my_utils; assert "my_utils.repro" not in sys.modules'
    subprocess.run([sys.executable, '-c', code], check=True)
