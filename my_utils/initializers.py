"""init_weights: the initialisations train_ch6 offers by name (d2l's is Xavier uniform)."""
from torch import nn

_INIT_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
               nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _xavier(m):
    nn.init.xavier_uniform_(m.weight)  # d2l's train_ch6: the bias keeps PyTorch's default


def _xavier_normal(m):
    nn.init.xavier_normal_(m.weight)


def _kaiming(m):
    nn.init.kaiming_normal_(m.weight, nonlinearity='relu')


def _normal(m):
    nn.init.normal_(m.weight, mean=0.0, std=1.0)
    if m.bias is not None:
        nn.init.zeros_(m.bias)


_INITS = {'xavier': _xavier, 'xavier_uniform': _xavier, 'xavier_normal': _xavier_normal,
          'kaiming': _kaiming, 'kaiming_normal': _kaiming, 'he': _kaiming, 'normal': _normal}
_INIT_HELP = ("'xavier' (xavier_uniform_), 'xavier_normal', 'kaiming' (kaiming_normal_, relu), "
              "'normal' (N(0, 1) weights, zero bias), None (keep the model's own), "
              "or a function applied with net.apply")


def init_weights(net, init='xavier'):
    """Initialise the weights of every Linear and Conv layer of `net`; returns net.

    init: 'xavier' (d2l's train_ch6: xavier_uniform_ weights, bias untouched), 'xavier_normal',
    'kaiming' (kaiming_normal_ for ReLU), 'normal' (N(0, 1) weights, zero bias), None (keep the
    model's own), or a function applied to every module with `net.apply(init)`.
    Only 'normal' changes the biases.
    """
    if init is None:
        return net
    if callable(init):
        net.apply(init)
        return net
    if not isinstance(init, str):
        raise TypeError(f'init must be one of {_INIT_HELP}; got {type(init).__name__} {init!r}')
    fn = _INITS.get(init.lower())
    if fn is None:
        raise ValueError(f'unknown init {init!r}; use one of {_INIT_HELP}')
    for m in net.modules():
        if isinstance(m, _INIT_TYPES):
            if isinstance(m.weight, nn.parameter.UninitializedParameter):
                raise ValueError(f'init={init!r}: {type(m).__name__} has not been given its '
                                 'shape yet; run one batch through the net first (net(X)) '
                                 'or pass init=None')
            fn(m)
    return net
