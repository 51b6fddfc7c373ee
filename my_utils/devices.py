"""Which device to train on, and how many worker processes a DataLoader may use."""
import os
import sys

import torch


def try_gpu(i=0):
    """Return gpu(i) if it exists, else Apple's MPS, else the CPU (d2l's name)."""
    if torch.cuda.device_count() >= i + 1:
        return torch.device(f'cuda:{i}')
    if getattr(torch.backends, 'mps', None) is not None and torch.backends.mps.is_available():
        return torch.device('mps')
    return torch.device('cpu')


def try_all_gpus():
    """Return all CUDA GPUs, or [cpu] if there are none (d2l's behaviour)."""
    devices = [torch.device(f'cuda:{i}') for i in range(torch.cuda.device_count())]
    return devices if devices else [torch.device('cpu')]


def usable_cpus():
    """CPUs this process may run on (a container or `taskset` can allow fewer than the machine has)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _in_notebook():
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, 'kernel')


def get_dataloader_workers():
    """Worker processes for a DataLoader (d2l returns 4).

    Never more than the usable CPUs, so PyTorch does not warn about too many workers on
    a 2-core Colab. None in a notebook on Windows or macOS: there workers are spawned, and
    spawned workers cannot import classes defined in the notebook itself.
    """
    if _in_notebook() and sys.platform in ('win32', 'darwin'):
        return 0
    return min(4, usable_cpus())


__all__ = ['try_gpu', 'try_all_gpus', 'usable_cpus', 'get_dataloader_workers']
