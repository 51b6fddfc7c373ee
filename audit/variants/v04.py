"""04: a linear patch stem and two MLPs, and the report's tuning study (init, a batch/lr grid,
Adam, weight decay, batch norm, augmentation, a final set-up), each step trained on its own.

The report trains with its own train(net, train_iter, test_iter, loss, num_epochs, optimizer): a
ready optimizer and loss, which train_ch6 takes. Its grid reports the best of epochs 5, 10, 15.
"""
import torch
from torch import nn

import my_utils as mu

from audit.lab import row
from audit.models import net_04
from audit.variants import Plan

NAME = '04_fashion_patch_mlp_tuning'
GRID_METRIC = {'best_of_epochs': [5, 10, 15]}  # the report's grid: best of these epochs
REPORTED_GRID = {(128, 0.01): 0.8418, (128, 0.1): 0.8688, (128, 0.2): 0.8789,
                 (256, 0.01): 0.7911, (256, 0.1): 0.8628, (256, 0.2): 0.8628,
                 (512, 0.01): 0.7753, (512, 0.1): 0.8374, (512, 0.2): 0.8591}
# The report's two tables, for the sign test across each (reported numbers that trained).
TABLES = {'study (steps 2 to 10)': ['2', '3', '6', '7', '8', '9', 'base'],
          'batch x lr grid': [f'4: b{b} lr{lr}' for b, lr in REPORTED_GRID]}
OPTIMIZERS = {'SGD': torch.optim.SGD, 'Adam': torch.optim.Adam}

STEP1 = dict(init='N(0,1)', optim='SGD', lr=0.1, batch=256, epochs=10, wd=0.0, bn=False, dropout=0.0)
STEP2 = {**STEP1, 'init': 'Xavier normal'}
STEP3 = {**STEP1, 'init': 'Kaiming normal'}
STEP5 = {**STEP3, 'optim': 'Adam', 'lr': 0.1, 'batch': 128, 'epochs': 15}
STEP6 = {**STEP5, 'lr': 0.001}
STEP7 = {**STEP6, 'wd': 1e-5}
STEP8 = {**STEP7, 'bn': True}
STEP9 = {**STEP8, 'augment': 'shift+flip+erase'}
FINAL = {**STEP8, 'batch': 32, 'dropout': 0.01}

LEFT_OUT = "the report's augmentation had two of the three transforms"
WEAKER = "the report's augmentation was weaker than ours"
BN_ROWS = 'the batch norm normalised the rows, not the features'


def report_init(weight_init):
    """The report's init: every linear layer's weights from `weight_init`, biases 0."""
    def init(m):
        if isinstance(m, nn.Linear):
            weight_init(m.weight)
            nn.init.zeros_(m.bias)
    return init


INITS = {'N(0,1)': report_init(nn.init.normal_),
         'Xavier normal': report_init(nn.init.xavier_normal_),
         'Kaiming normal': report_init(nn.init.kaiming_normal_),
         'PyTorch default': None}  # no init call: the layers keep PyTorch's own


def augmentation(shift=0.1, flip=0.5, erase=0.5, erase_scale=(0.02, 0.33)):
    steps = ([mu.RandomTranslate(shift)] if shift else []) + ([mu.RandomHorizontalFlip(flip)] if flip else [])
    if erase:
        steps.append(mu.RandomErasing(p=erase, scale=erase_scale, ratio=(0.3, 3.3), value=0.0))
    return nn.Sequential(*steps)


AUGMENTS = {None: lambda: None,
            'shift+flip+erase': augmentation,               # step 9 as we read it
            'shift+flip': lambda: augmentation(erase=0),    # readings: one transform left out,
            'shift+erase': lambda: augmentation(flip=0),
            'flip+erase': lambda: augmentation(shift=0),
            'weak': lambda: augmentation(shift=0.05, erase=0.25, erase_scale=(0.02, 0.1))}  # or weaker


def plan(quick, device):
    n_train, n_test = (400, 200) if quick else (None, None)
    loaders = {}

    def load(batch_size, augment=None):
        if (batch_size, augment) not in loaders:
            loaders[batch_size, augment] = mu.load_data_fashion_mnist(
                batch_size, device=device, augment=AUGMENTS[augment](), n_train=n_train, n_test=n_test)
        return loaders[batch_size, augment]

    def validation_split(batch):
        # the last sixth of the training images (10,000 of 60,000) held out for choosing epochs
        full = load(batch)[0]
        n_fit = len(full.dataset) - len(full.dataset) // 6
        return (mu.DeviceLoader(full.images[:n_fit], full.labels[:n_fit], batch, shuffle=True, device=device),
                mu.DeviceLoader(full.images[n_fit:], full.labels[n_fit:], 256, device=device))

    def train(init='Kaiming normal', optim='SGD', lr=0.1, batch=256, epochs=10, wd=0.0, bn=False,
              dropout=0.0, augment=None, bn_over='features', split='test'):
        net = net_04(bn=bn, dropout=dropout, bn_over=bn_over)
        optimizer = OPTIMIZERS[optim](net.parameters(), lr=lr, weight_decay=wd)
        data = validation_split(batch) if split == 'validation' else load(batch, augment)
        return mu.train_ch6(net, *data, 1 if quick else epochs, lr, device, optimizer=optimizer,
                            loss=nn.CrossEntropyLoss(), init=INITS[init], animate=False)

    # The batch-256, lr-0.01 cell misses: trained on 10 seeds. The batch-512 cell is a reported row
    # and also a reading of it (the cell holds a run with half the updates, as at batch 512).
    cell_roles = {(256, 0.01): dict(seeds_run=10),
                  (512, 0.01): dict(explains='4: b256 lr0.01',
                                    claim="the batch-256 cell holds a run with half the updates, "
                                          "as at batch 512 (a slip in the report's table)",
                                    declared='2026-12-03 05:35 34aa361')}
    rows = [
        row('base', '10 final: batch 32, Adam 0.001, wd 1e-5, BN, dropout 0.01, 15 epochs', 0.8884, **FINAL),
        row('1', 'N(0,1) init, zero bias; SGD lr 0.1, batch 256, 10 epochs', 0.1, failure='chance', **STEP1),
        row('2', 'Xavier normal init', 0.8404, **STEP2),
        row('3', 'Kaiming normal init', 0.8508, **STEP3),
        *[row(f'4: b{b} lr{lr}', f'SGD batch {b}, lr {lr}: best at epoch 5/10/15', acc, metric=GRID_METRIC,
              **cell_roles.get((b, lr), {}), **{**STEP3, 'batch': b, 'lr': lr, 'epochs': 15})
          for (b, lr), acc in REPORTED_GRID.items()],
        row('4: b256 lr0.01 xavier', 'grid cell b256 lr 0.01 with Xavier normal init', None,
            metric=GRID_METRIC, explains='4: b256 lr0.01', claim="the grid kept step 2's Xavier init", declared='2026-12-02 10:27 d007632',
            **{**STEP2, 'batch': 256, 'lr': 0.01, 'epochs': 15}),
        row('4: b256 lr0.01 default init', "grid cell b256 lr 0.01 with PyTorch's default init", None,
            metric=GRID_METRIC, explains='4: b256 lr0.01',
            claim="the grid's net was built without an init call (PyTorch's default init)",
            declared='2026-12-02 18:46 46c5038',
            **{**STEP3, 'init': 'PyTorch default', 'batch': 256, 'lr': 0.01, 'epochs': 15}),
        row('5', 'Adam lr 0.1, batch 128, 15 epochs', 0.1, failure='chance', **STEP5),
        row('6', 'Adam lr 0.001', 0.8812, **STEP6),
        row('7', '+ weight decay 1e-5', 0.8829, **STEP7),
        row('8', '+ BatchNorm1d after each hidden linear layer', 0.8868, **STEP8),
        row('9', '+ augmentation (shift 10 %, flip, erasing)', 0.8797, **STEP9),
        *[row(f'9: {name}', f'step 9 with {name} only', None, explains='9', claim=LEFT_OUT, declared='2026-12-02 01:09 81d45f0',
              **{**STEP9, 'augment': name}) for name in ('shift+flip', 'shift+erase', 'flip+erase')],
        row('9: weak', 'step 9, weaker: shift 5 %, flip as before, erasing p 0.25 of 2-10 % of the image',
            None, explains='9', claim=WEAKER, declared='2026-12-02 01:36 a819ab7', **{**STEP9, 'augment': 'weak'}),
        row('8: bn over rows', 'step 8, batch norm over the rows', None, explains='8', claim=BN_ROWS, declared='2026-12-02 01:09 81d45f0',
            **{**STEP8, 'bn_over': 'rows'}),
        row('9: bn over rows', 'step 9, batch norm over the rows', None, explains='9', claim=BN_ROWS, declared='2026-12-02 01:09 81d45f0',
            **{**STEP9, 'bn_over': 'rows'}),
        row('extra: validation', 'final set-up on 50,000 images, evaluated on the other 10,000', None,
            note='a step toward `extra`: its test accuracy is the validation accuracy',
            split='validation', **FINAL),
    ]

    def later(lab):
        # `extra` trains the final set-up for the epochs seed 0's validation run chose.
        validation = lab.records('extra: validation')
        if not validation:  # not stored yet: `extra` is declared once it is
            return []
        chosen = validation[0]['best_epoch']
        return [row('extra', f'final set-up, {chosen} epochs chosen on the validation split', None,
                    note='beyond the report', **{**FINAL, 'epochs': chosen})]

    setup = dict(model=str(net_04()), n_train=n_train, n_test=n_test)
    return Plan(rows, train, setup, later)
