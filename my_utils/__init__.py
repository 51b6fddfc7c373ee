"""my_utils: d2l's PyTorch helpers, fixed for current software, plus loaders and a fast training loop.

Everything is re-exported here, so `import my_utils as mu` (or `as d2l`) gives `mu.train_ch6`,
`mu.load_data_fashion_mnist`, `mu.Animator`, ... as in d2l's single file.
"""
import numpy as np
import torch
import torchvision
from torch import nn
from torch.nn import functional as F
from torch.utils import data
from torchvision import transforms
from IPython import display

# TEMPORARY while the modules are being written: skip the ones not there yet.
import importlib as _importlib
for _name in ['devices', 'utils', 'plotting', 'data', 'fastdata', 'augment', 'synthetic',
              'layers', 'training', 'experiments']:
    try:
        _module = _importlib.import_module(f'.{_name}', __name__)
    except ModuleNotFoundError as _err:
        if _err.name != f'{__name__}.{_name}':
            raise
        continue
    for _public in getattr(_module, '__all__', [n for n in dir(_module) if not n.startswith('_')]):
        globals()[_public] = getattr(_module, _public)

__version__ = '0.1.0'
