"""02: two MLPs on 14x14 unfolded patches, train_ch6 (SGD lr 0.1, batch 64, 100 epochs), and the
report's momentum and weight-decay table.

We read the momentum table's "NA" weight decay as 0, and use lr 0.01 for its "lower lr" (no value
given). Readings of the misses: plain SGD (train_ch6 built its own SGD and ignored the momentum
optimizer), dampened momentum, weight decay without momentum, and for the lr 0.9 nan: the seed,
momentum kept, the base run's net reused, TF32 products (imitated on the CPU; real on a GPU).
"""
import contextlib

import torch
from torch import nn

import my_utils as mu

from audit.lab import row
from audit.models import TF32Linear, net_02
from audit.variants import Plan

NAME = '02_fashion_two_mlp_unfold'
BATCH, LR = 64, 0.1

# (lr, weight decay, momentum, reported test accuracy): the report's momentum table
MOMENTUM_ROWS = [
    (0.1, 0.0, 0.9, 0.85), (0.15, 0.0, 0.95, 0.8566), (0.2, 0.0, 0.99, 0.8451),
    (0.2, 0.01, 0.99, 0.8595), (0.2, 0.05, 0.99, 0.8595), (0.2, 0.09, 0.99, 0.8551),
    (0.5, 0.09, 0.99, 0.8601), (0.9, 0.09, 0.99, 0.861)]
# The report's two tables, for the sign test across each (reported numbers that trained).
# The momentum table is also set against plain SGD at each row's lr: most of its rows diverge here.
PLAIN_AT = {0.1: 'base', 0.15: 'plain lr 0.15', 0.2: 'plain lr 0.2', 0.5: 'plain lr 0.5', 0.9: 'high lr'}
TABLES = {'base table': ['base', 'low lr', 'batch 256'],
          'momentum table': [f'sgd lr {lr} m {m} wd {wd}' for lr, wd, m, _ in MOMENTUM_ROWS],
          'momentum table against plain SGD at the same lr': [
              (f'sgd lr {lr} m {m} wd {wd}', PLAIN_AT[lr]) for lr, wd, m, _ in MOMENTUM_ROWS],
          'every batch-64 number against plain SGD at the same lr': [
              ('base', 'base'), *[(f'sgd lr {lr} m {m} wd {wd}', PLAIN_AT[lr]) for lr, wd, m, _ in MOMENTUM_ROWS]]}
PLAIN = 'plain SGD: train_ch6 ignored the momentum optimizer'
GPU_ROUNDING = "the report's GPU rounded float32 products differently, and that made lr 0.9 diverge"


def momentum_row(lr, wd, m):
    return f'sgd lr {lr} m {m} wd {wd}'


def rows_at(lr):
    return [momentum_row(r, wd, m) for r, wd, m, _ in MOMENTUM_ROWS if r == lr]


@contextlib.contextmanager
def cuda_tf32(allowed):
    """TF32 matrix products on a CUDA GPU on or off for one run (None: leave the default)."""
    if allowed is None:
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def plan(quick, device):
    epochs = 1 if quick else 100
    n_train, n_test = (2000, 1000) if quick else (None, None)
    loaders = {}

    def load(batch_size):
        if batch_size not in loaders:
            loaders[batch_size] = mu.load_data_fashion_mnist(batch_size, device=device,
                                                             n_train=n_train, n_test=n_test)
        return loaders[batch_size]

    def train(lr=LR, batch_size=BATCH, momentum=0.0, dampening=0.0, weight_decay=0.0, dropout=None,
              epochs=epochs, after_base=False, matmul='float32', cuda_tf32_matmul=None):
        net = net_02(dropout, linear=TF32Linear if matmul == 'tf32' else nn.Linear)
        with cuda_tf32(cuda_tf32_matmul):
            if after_base:  # the base run first, on the same net; train_ch6 then re-initialises its weights only
                mu.train_ch6(net, *load(BATCH), epochs, LR, device, animate=False)

            def sgd(params):
                return torch.optim.SGD(params, lr=lr, momentum=momentum, dampening=dampening,
                                       weight_decay=weight_decay)

            return mu.train_ch6(net, *load(batch_size), epochs, lr, device, optimizer=sgd,
                                animate=False)

    rows = [
        row('base', 'batch 64, SGD lr 0.1, 100 epochs', 0.860, reported_train=(0.113, 0.960),
            explains=rows_at(0.1), claim=PLAIN, declared='2026-12-02 00:56 537dc8d'),
        row('high lr', 'lr 0.9', 0.100, failure='nan', reported_train=(float('nan'), 0.100), lr=0.9,
            seeds_run=10, explains=rows_at(0.9), claim=PLAIN, declared='2026-12-02 00:56 537dc8d'),
        row('low lr', 'lr 0.01 (the report gives no value)', 0.826, reported_train=(0.446, 0.840),
            lr=0.01),
        row('batch 256', 'batch 256, lr 0.1', 0.862, reported_train=(0.300, 0.893), batch_size=256),
        *[row(momentum_row(lr, wd, m), f'SGD lr {lr}, momentum {m}, weight decay {wd or "-"}', acc,
              lr=lr, momentum=m, weight_decay=wd,
              **({'explains': 'high lr', 'claim': "the lr 0.9 run used the momentum table's lr 0.9 optimizer",
                     'declared': '2026-12-02 06:42 edb91ff'}
                 if lr == 0.9 else {}))
          for lr, wd, m, acc in MOMENTUM_ROWS],
        # plain lr 0.15 misses its row by 1.7 points, just past the rule's 1.5: seeds added to 10
        *[row(f'plain lr {lr}', f'plain SGD, lr {lr}', None, lr=lr, explains=rows_at(lr), claim=PLAIN,
              declared='2026-12-02 00:56 537dc8d', seeds_run=10 if lr == 0.15 else None)
          for lr in (0.15, 0.2, 0.5)],
        row('dampened lr 0.2 m 0.99', 'SGD lr 0.2, momentum 0.99, dampening 0.99', None, lr=0.2,
            momentum=0.99, dampening=0.99, explains=rows_at(0.2)[:2],
            claim='dampened momentum (steps near lr, not lr / (1 - m))', declared='2026-12-02 00:56 537dc8d'),
        row('momentum lr 0.9', 'SGD lr 0.9, momentum 0.9', None, lr=0.9, momentum=0.9,
            explains='high lr', claim='the lr 0.9 run kept a momentum optimizer',
            declared='2026-12-02 03:08 6eecb4c'),
        row('high lr after base', 'lr 0.9 on the net the base run trained (new weights, its biases)',
            None, lr=0.9, after_base=True, explains='high lr', seeds_run=5,
            claim="the lr 0.9 run reused the base run's net, whose trained biases train_ch6 keeps",
            declared='2026-12-02 10:29 7d36f40'),
        row('high lr tf32', 'lr 0.9, every linear layer multiplying in TF32 (imitated)', None, lr=0.9,
            matmul='tf32', seeds_run=10, explains='high lr',
            claim="the report's GPU multiplied in TF32 (10-bit mantissas), imitated on the CPU",
            declared='2026-12-02 22:38 ffd0f9e'),
        row('high lr cuda fp32', 'lr 0.9 on a CUDA GPU, TF32 products off', None, lr=0.9,
            cuda_tf32_matmul=False, seeds=8, needs='cuda', explains='high lr', claim=GPU_ROUNDING,
            declared='2026-12-04 16:30 (this session)'),
        row('high lr cuda tf32', 'lr 0.9 on a CUDA GPU, TF32 products on', None, lr=0.9,
            cuda_tf32_matmul=True, seeds=8, needs='cuda', explains='high lr',
            claim="the report's GPU multiplied in TF32, as PyTorch 1.7 to 1.11 did by default",
            declared='2026-12-04 16:30 (this session)'),
        row('plain lr 0.2 wd 0.05', 'plain SGD, lr 0.2, weight decay 0.05', None, lr=0.2,
            weight_decay=0.05, explains=momentum_row(0.2, 0.05, 0.99),
            claim='weight decay applied without momentum', declared='2026-12-02 00:56 537dc8d'),
        row('dropout applied', 'nn.Dropout(0.1) after MLP 1', None, dropout=0.1,
            note='beyond the report: the dropout it meant to have'),
    ]
    setup = dict(model=str(net_02()), n_train=n_train, n_test=n_test, init='xavier')
    return Plan(rows, train, setup)
