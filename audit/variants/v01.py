"""01: a Mixer with a 2x2 convolutional patch stem, trained by train_ch6 (SGD lr 0.05, batch 256).

The report prints a model with kernel 2 (196 patches) but lists patch size 4 among its
hyper-parameters: both are rows, the printed model is the base.
"""
import my_utils as mu

from audit.lab import row
from audit.models import net_01
from audit.variants import Plan

NAME = '01_fashion_mixer_conv_stem'
BATCH, LR = 256, 0.05
REPORTED_TRAIN = (0.173, 0.934)  # the report's train loss and train accuracy


def plan(quick, device):
    epochs = 1 if quick else 30
    n_train, n_test = (2000, 1000) if quick else (None, None)
    loaded = []

    def train(patch_size=2, residual=False, epochs=epochs):
        if not loaded:  # on the first run, so that reports are written without the data set
            loaded.extend(mu.load_data_fashion_mnist(BATCH, device=device, n_train=n_train,
                                                     n_test=n_test))
        return mu.train_ch6(net_01(patch_size, residual), *loaded, epochs, LR, device,
                            animate=False)

    rows = [
        row('base', 'printed model: 2×2 conv stem, 196 patches, 3 blocks without residuals; SGD lr '
            '0.05, batch 256, 30 epochs', 0.865, reported_train=REPORTED_TRAIN),
        row('patch4', 'as base with patch size 4 (49 patches), the hyper-parameter list', 0.865,
            reported_train=REPORTED_TRAIN, patch_size=4,
            note='the other model the report describes (its hyper-parameter list)'),
        row('residual', 'as base with residual connections around the token and channel MLPs', None,
            residual=True, note='beyond the report: the pre-norm Mixer block'),
    ]
    setup = dict(model=str(net_01()), batch=BATCH, lr=LR, n_train=n_train, n_test=n_test,
                 init='xavier')
    return Plan(rows, train, setup)
