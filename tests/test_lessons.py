"""The student lessons in notebooks/: each builds the network the audit trains, holds the results
markers once, and carries none of the audit's tooling.

Nothing is executed here but the cells marked `"lesson": "model"` in their metadata (the network
builders); the lessons themselves are re-executed by `pytest --nbval notebooks/`.
"""
import json
import math
import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import my_utils as mu
from audit import models

NOTEBOOKS = Path(__file__).resolve().parents[1] / 'notebooks'
LESSONS = ['01_fashion_mixer_conv_stem', '02_fashion_two_mlp_unfold',
           '03_cifar10_mixed_conv_blocks', '04_fashion_patch_mlp_tuning',
           '05_kmnist_patch_mixer']
START = '<!-- results: written by python -m audit; do not edit by hand -->'
END = '<!-- /results -->'
GREY, COLOUR = (2, 1, 28, 28), (2, 3, 32, 32)

# (lesson, arguments of its make_net, the audit's builder with the same meaning, input shape)
CASES = [
    ('01_fashion_mixer_conv_stem', {}, models.net_01, GREY),
    ('01_fashion_mixer_conv_stem', {'patch_size': 4}, lambda: models.net_01(patch_size=4), GREY),
    ('02_fashion_two_mlp_unfold', {}, models.net_02, GREY),
    ('02_fashion_two_mlp_unfold', {'dropout': 0.1}, lambda: models.net_02(dropout=0.1), GREY),
    ('03_cifar10_mixed_conv_blocks', {}, models.net_03, COLOUR),
    ('04_fashion_patch_mlp_tuning', {}, models.net_04, GREY),
    ('04_fashion_patch_mlp_tuning', {'bn': True, 'dropout': 0.01},
     lambda: models.net_04(bn=True, dropout=0.01), GREY),
    ('05_kmnist_patch_mixer', {}, models.net_05, GREY),
]


def cells(lesson):
    return json.loads((NOTEBOOKS / f'{lesson}.ipynb').read_text())['cells']


def source(cell):
    return ''.join(cell['source'])


def outputs_text(cell):
    parts = []
    for out in cell.get('outputs', []):
        parts.append(''.join(out.get('text', '')))
        parts.append(''.join(out.get('data', {}).get('text/plain', '')))
    return ''.join(parts)


def make_net_of(lesson):
    """make_net from the lesson's model cells, run in order in a fresh namespace."""
    namespace = {'torch': torch, 'nn': nn, 'F': F, 'mu': mu, 'OrderedDict': OrderedDict,
                 'math': math}
    model_cells = [c for c in cells(lesson) if c['metadata'].get('lesson') == 'model']
    assert model_cells, f'{lesson} has no cell with "lesson": "model" in its metadata'
    for cell in model_cells:
        exec(compile(source(cell), f'{lesson} model cell', 'exec'), namespace)
    assert callable(namespace.get('make_net')), f'{lesson}: the model cells define no make_net'
    return namespace['make_net']


def build_pair(lesson, kwargs, reference):
    make_net = make_net_of(lesson)
    torch.manual_seed(0)
    ours = make_net(**kwargs)
    torch.manual_seed(0)
    theirs = reference()
    return ours, theirs


@pytest.mark.parametrize('lesson, kwargs, reference, shape', CASES,
                         ids=[f'{c[0][:2]}-{c[1] or "report"}' for c in CASES])
def test_lesson_builds_the_audits_network(lesson, kwargs, reference, shape):
    ours, theirs = build_pair(lesson, kwargs, reference)
    names = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    assert names == [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    ours.load_state_dict(theirs.state_dict())  # strict: every name and shape fits
    torch.manual_seed(1)
    X = torch.rand(shape)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        assert torch.allclose(ours(X), theirs(X), rtol=0, atol=1e-6)


@pytest.mark.parametrize('lesson, kwargs, reference, shape', CASES,
                         ids=[f'{c[0][:2]}-{c[1] or "report"}' for c in CASES])
def test_same_seed_gives_the_same_weights_and_module_tree(lesson, kwargs, reference, shape):
    # Layers created in the same order draw the same initial weights from the same seed.
    ours, theirs = build_pair(lesson, kwargs, reference)
    assert str(ours) == str(theirs)
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), f'{lesson}: {name} differs after torch.manual_seed(0)'


@pytest.mark.parametrize('lesson', LESSONS)
def test_results_markers_appear_once_alone_in_one_markdown_cell(lesson):
    holding = [c for c in cells(lesson) if START in source(c) or END in source(c)]
    assert len(holding) == 1, f'{lesson}: the results markers are in {len(holding)} cells'
    cell = holding[0]
    lines = source(cell).splitlines()
    assert cell['cell_type'] == 'markdown'
    assert lines.count(START) == 1 and lines.count(END) == 1
    assert lines[0] == START and lines[-1] == END


def without_results(text):
    return re.sub(re.escape(START) + '.*?' + re.escape(END), '', text, flags=re.S)


@pytest.mark.parametrize('lesson', LESSONS)
def test_no_cell_imports_or_mentions_the_audit_tooling(lesson):
    for i, cell in enumerate(cells(lesson)):
        text = without_results(source(cell)) + outputs_text(cell)
        found = re.search(r'audit|repro', text, re.I)
        assert not found, f'{lesson}, cell {i}: mentions {found.group()!r}'


@pytest.mark.parametrize('lesson', LESSONS)
def test_no_code_cell_carries_an_nbval_comment(lesson):
    # nbval's options go in cell metadata tags, where a student does not read them.
    assert not [i for i, c in enumerate(cells(lesson))
                if c['cell_type'] == 'code' and 'NBVAL' in source(c).upper()]


@pytest.mark.parametrize('lesson', LESSONS)
def test_training_cells_ignore_their_timing_output(lesson):
    training = [c for c in cells(lesson) if c['cell_type'] == 'code' and 'train_ch6(' in source(c)]
    assert training, f'{lesson} has no training cell'
    for cell in training:
        assert 'nbval-ignore-output' in cell['metadata'].get('tags', [])


@pytest.mark.parametrize('lesson', LESSONS)
def test_first_code_cell_says_how_to_install_my_utils(lesson):
    first = next(c for c in cells(lesson) if c['cell_type'] == 'code')
    assert 'except ModuleNotFoundError' in source(first) and 'pip install' in source(first)
