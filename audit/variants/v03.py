"""03: CIFAR-10, seven blocks of six convolutions mixed by an MLP-computed vector (Adam lr 0.002,
wd 1e-5, batch 64, 60 epochs, crop and flip). Needs CIFAR-10 (not on our machines) and a GPU.

Our choices where the report is open: softmax for the mixing weights, three 5x5 then three 3x3
convolutions per block, dropout 0.2, random crop (padding 4) and horizontal flip.
"""
import tempfile

import torch
from torch import nn

import my_utils as mu

from audit.lab import row
from audit.models import net_03
from audit.variants import Plan

NAME = '03_cifar10_mixed_conv_blocks'
BATCH, LR, WEIGHT_DECAY = 64, 0.002, 1e-5
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
# Every number the report gives: epochs 57 to 60, test and (augmented) train accuracy.
# What a run trains on: the real set in full mode; in quick mode a stand-in when it is absent.
DATA_LABEL = {False: 'CIFAR-10', True: 'CIFAR-10, or a stand-in when absent'}
REPORTED_EPOCHS = {57: (0.8564, 0.8531), 58: (0.8599, 0.85668), 59: (0.8625, 0.8544),
                   60: (0.8635, 0.85546)}

# The report's numbers that are not a row's last-epoch test accuracy.
OTHER_NUMBERS = [{'what': f'base, epoch {e} test acc', 'reported': f'{test:.4f}'}
                 for e, (test, _) in REPORTED_EPOCHS.items() if e < 60] + [
                {'what': f'base, epoch {e} train acc (augmented)', 'reported': f'{train:.5f}'}
                for e, (_, train) in REPORTED_EPOCHS.items()]


def augmentation():
    return nn.Sequential(mu.RandomCrop(32, padding=4), mu.RandomHorizontalFlip())


def plan(quick, device):
    epochs = 1 if quick else 60
    n_train, n_test = (128, 64) if quick else (None, None)

    def load(root=None):
        return mu.load_data_cifar10(BATCH, root=root, device=device, augment=augmentation(),
                                    normalize=(CIFAR_MEAN, CIFAR_STD), n_train=n_train,
                                    n_test=n_test, download=not quick)

    loaded = {}

    def data():
        # loaded on the first run, so that reports are written without the data set
        if not loaded:
            try:
                loaded['iters'] = load()
            except mu.DataError:
                if not quick:  # a full run never trains on stand-in data
                    raise
                loaded['iters'] = load(mu.write_fake_cifar10(tempfile.mkdtemp(), n_train, n_test))
        return loaded['iters']

    def adam(params):
        return torch.optim.Adam(params, lr=LR, betas=(0.9, 0.999), eps=1e-8,
                                weight_decay=WEIGHT_DECAY)

    def train(scheduler=None, epochs=epochs):
        schedule = None
        if scheduler == 'cosine':
            def schedule(opt):
                return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        return mu.train_ch6(net_03(), *data(), epochs, LR, device, optimizer=adam,
                            scheduler=schedule, init=None, animate=False)

    rows = [
        row('base', 'Adam lr 0.002, wd 1e-5, batch 64, 60 epochs, crop+flip; 7 blocks, K=6, '
            'dropout 0.2', 0.8635, reported_train=0.85546),
        row('cosine', 'base + cosine lr decay to 0 over the 60 epochs', None, scheduler='cosine',
            note='beyond the report: is the constant lr holding it back?'),
    ]
    setup = dict(model=str(net_03()), data=DATA_LABEL[quick], n_train=n_train, n_test=n_test, batch=BATCH,
                 optimizer=f'Adam lr {LR} wd {WEIGHT_DECAY}', augment=str(augmentation()), init=None)
    return Plan(rows, train, setup)
