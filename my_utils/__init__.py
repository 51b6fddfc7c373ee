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

from .devices import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403
from .plotting import *  # noqa: F401,F403
from .datasets import *  # noqa: F401,F403
from .fastdata import *  # noqa: F401,F403
from .augment import *  # noqa: F401,F403
from .synthetic import *  # noqa: F401,F403
from .standin import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .training import *  # noqa: F401,F403
from .train6 import *  # noqa: F401,F403
from .book import *  # noqa: F401,F403
from . import (augment as _augment, book as _book, datasets as _datasets, devices as _devices,
               fastdata as _fastdata, layers as _layers, plotting as _plotting,
               standin as _standin, synthetic as _synthetic, train6 as _train6,
               training as _training, utils as _utils)

# The public names, as docs/api.md's table lists them (a test compares the two). The audit
# tool (audit/, at the repository's root) is not among them: it is not part of the library.
__all__ = sorted({name for module in (_devices, _utils, _plotting, _datasets, _fastdata, _augment,
                                      _synthetic, _standin, _layers, _training, _train6, _book)
                  for name in module.__all__})

__version__ = '0.2.0'
