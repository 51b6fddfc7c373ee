"""The d2l book's (v0.17.6) helpers that the other modules lack: ``evaluate_loss`` (4.4, 4.5),
``DATA_HUB`` / ``download`` (4.10, Kaggle house prices) and ``Residual`` (7.6, ResNet).

Same names, signatures and printed lines as d2l; mistakes give one clear error instead.
"""
import hashlib
import os
import tarfile
import urllib.request
import zipfile

import torch
from torch import nn
from torch.nn import functional as F

from .arguments import is_int
from .datasets import DataError, _short
from .evaluation import _batch_size, _evaluating, _loss_sum_and_mean, _module_device, _to
from .utils import Accumulator

__all__ = ['evaluate_loss', 'DATA_HUB', 'DATA_URL', 'download', 'download_extract', 'download_all',
           'Residual']


# ---- 4.4 / 4.5: the loss of a model over a data set -----------------------------------------

def evaluate_loss(net, data_iter, loss):
    """Evaluate the loss of a model on the given dataset (the mean loss per example).

    As d2l, but under no_grad and eval() (restored after), on the net's device, and for a loss
    with any reduction ('none', 'mean' or 'sum')."""
    device = _module_device(net)
    metric = Accumulator(2)  # sum of losses, no. of examples
    with _evaluating(net), torch.no_grad():
        for X, y in data_iter:
            X, y = _to(X, device), _to(y, device)
            out = net(X)
            if y.numel() == out.numel():  # regression: d2l reshapes y like the output
                y = y.reshape(out.shape)
            l = loss(out, y)
            if l.dim():  # reduction='none': one loss per element (d2l counts l.numel())
                metric.add(l.sum(), l.numel())
            else:
                n = _batch_size(y)
                metric.add(_loss_sum_and_mean(l, getattr(loss, 'reduction', 'mean'), n)[0], n)
    if metric[1] == 0:
        raise ValueError('evaluate_loss: data_iter gave no examples (an empty data set or a '
                         'used-up generator); pass a DataLoader, e.g. d2l.load_array(...)')
    return metric[0] / metric[1]


# ---- 4.10: downloading the book's data sets -----------------------------------------------

DATA_HUB = dict()  # name -> (url, sha1 of the file)
DATA_URL = 'http://d2l-data.s3-accelerate.amazonaws.com/'


def _sha1(path):
    sha1 = hashlib.sha1()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            sha1.update(block)
    return sha1.hexdigest()


def download(name, cache_dir=os.path.join('..', 'data')):
    """Download a file inserted into DATA_HUB, return the local filename.

    A file already in ``cache_dir`` with the right sha1 is used as is (no network needed).
    Without a network, DataError says where to put the file by hand."""
    if name not in DATA_HUB:
        raise ValueError(f'{name!r} is not in DATA_HUB (it holds {", ".join(map(repr, DATA_HUB))}); '
                         f'add DATA_HUB[{name!r}] = (url, sha1) first')
    url, sha1_hash = DATA_HUB[name]
    fname = os.path.join(cache_dir, url.split('/')[-1])
    if os.path.exists(cache_dir) and not os.path.isdir(cache_dir):
        raise DataError(f'cache_dir {os.path.abspath(cache_dir)} is a file, not a folder: pass '
                        f'cache_dir= a folder (default ../data)', dataset=name,
                        folder=os.path.abspath(cache_dir), missing=[os.path.basename(fname)])
    stale = os.path.isfile(fname)
    if stale and _sha1(fname) == sha1_hash:
        return fname  # hit cache
    print(f'Downloading {fname} from {url}...')
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            content = r.read()
    except (OSError, ValueError) as err:  # URLError, timeouts and refused connections are OSErrors
        why = ('; the file there now has another sha1 (damaged or another version): replace it'
               if stale else '')
        raise DataError(f'{name}: downloading {url} failed (no network? {_short(err)}). Download it '
                        f'where there is a network and put it at {os.path.abspath(fname)} (sha1 '
                        f'{sha1_hash}){why}.', dataset=name, folder=os.path.abspath(cache_dir),
                        missing=[] if stale else [os.path.basename(fname)],
                        problems={os.path.basename(fname): 'has another sha1'} if stale else {},
                        ) from None
    if hashlib.sha1(content).hexdigest() != sha1_hash:  # d2l would keep a wrong file silently
        raise DataError(f'{name}: the file downloaded from {url} does not have sha1 {sha1_hash} '
                        f'(a proxy error page, or the file changed); nothing was written.',
                        dataset=name, folder=os.path.abspath(cache_dir),
                        missing=[] if stale else [os.path.basename(fname)])
    os.makedirs(cache_dir, exist_ok=True)
    part = fname + '.part'
    with open(part, 'wb') as f:
        f.write(content)
    os.replace(part, fname)  # an interrupted write leaves no half file under the real name
    return fname


def download_extract(name, folder=None):
    """Download and extract a zip/tar file."""
    if name in DATA_HUB:
        ext = os.path.splitext(DATA_HUB[name][0].split('/')[-1])[1]
        if ext not in ('.zip', '.tar', '.gz'):  # say so before downloading it
            raise ValueError(f'Only zip/tar files can be extracted; {name!r} is a {ext or "plain"} '
                             f'file: use download({name!r})')
    fname = download(name)
    base_dir = os.path.dirname(fname)
    data_dir, ext = os.path.splitext(fname)
    try:
        if ext == '.zip':
            with zipfile.ZipFile(fname, 'r') as fp:
                fp.extractall(base_dir)
        else:
            with tarfile.open(fname, 'r') as fp:
                fp.extractall(base_dir, **({'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise DataError(f'{fname} could not be extracted ({_short(err)}): delete it and call '
                        f'download_extract({name!r}) again.', dataset=name, folder=base_dir,
                        problems={os.path.basename(fname): f'could not be extracted ({_short(err)})'}
                        ) from None
    return os.path.join(base_dir, folder) if folder else data_dir


def download_all():
    """Download all files in the DATA_HUB."""
    for name in DATA_HUB:
        download(name)


DATA_HUB['kaggle_house_train'] = (DATA_URL + 'kaggle_house_pred_train.csv',
                                  '585e9cc93e70b39160e7921475f9bcd7d31219ce')
DATA_HUB['kaggle_house_test'] = (DATA_URL + 'kaggle_house_pred_test.csv',
                                 'fa19780a7b011d9b009e8bff8e99922a8ee2eb90')


# ---- 7.6: ResNet ---------------------------------------------------------------------------

def _positive_int(value, name):
    if not is_int(value, minimum=1):
        raise ValueError(f'Residual: {name} must be a positive int, got {value!r}')
    return int(value)


class Residual(nn.Module):
    """The Residual block of ResNet."""

    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        input_channels = _positive_int(input_channels, 'input_channels')
        num_channels = _positive_int(num_channels, 'num_channels')
        strides = _positive_int(strides, 'strides')
        if not use_1x1conv and (input_channels != num_channels or strides != 1):
            # Without the 1x1 convolution the input is added as it is: the shapes must match.
            raise ValueError(
                f'Residual({input_channels}, {num_channels}, strides={strides}) needs '
                f'use_1x1conv=True: its output ({num_channels} channels, stride {strides}) cannot be '
                f'added to its input ({input_channels} channels) otherwise')
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.conv3 = (nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
                      if use_1x1conv else None)
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X):
        if X.dim() != 4 or X.shape[1] != self.conv1.in_channels:
            raise ValueError(f'Residual({self.conv1.in_channels}, {self.conv1.out_channels}) got an '
                             f'input of shape {tuple(X.shape)}: it expects (batch, '
                             f'{self.conv1.in_channels}, height, width)')
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return F.relu(Y + X)
