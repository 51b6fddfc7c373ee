"""What a stored run records about where it came from: commit, set-up fingerprint, machine, data."""
import functools
import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path

import numpy
import torch
import torchvision


def fingerprint(setup):
    """12 hex digits that change whenever the set-up (model, hyperparameters, data subset) does.

    `setup` is a dict of JSON values; modules are described by their printed tree."""
    text = json.dumps(setup, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def commit(repo):
    """The checkout's commit, with '+dirty' when tracked files differ from it; outside git (a GPU
    machine gets the working tree only) the commit the caller names in AUDIT_COMMIT, else None."""
    if os.environ.get('AUDIT_COMMIT'):
        return os.environ['AUDIT_COMMIT']

    def git(*args):
        return subprocess.run(['git', '-C', str(repo), *args], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    try:
        head = git('rev-parse', 'HEAD')
        dirty = git('status', '--porcelain', '--untracked-files=no', '--', 'my_utils', 'audit')
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ('+dirty' if dirty else '')) or None


def hardware(device):
    """'NVIDIA H200' on a GPU; 'CPU model, N threads' on the CPU."""
    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    if device.type == 'mps':
        return f'Apple MPS ({platform.machine()})'
    return f'{_cpu_model()}, {torch.get_num_threads()} threads'


def _cpu_model():
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=None)
def data_checksum(folder):
    """sha256 over the data set's files (names and bytes), 16 hex digits; None when absent."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob('*') if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def environment(device, repo, data_folder):
    """Everything a run records besides its numbers and its set-up."""
    return {'commit': commit(repo), 'hardware': hardware(device), 'torch': torch.__version__,
            'torchvision': torchvision.__version__, 'numpy': numpy.__version__,
            'data_sha256': data_checksum(str(data_folder)) if data_folder else None,
            'host_cpus': os.cpu_count()}
