"""Training speed: the classic d2l loop against my_utils' fast path, model by model.

    python benchmarks/train_speed.py                      # default device (mu.try_gpu()), batch 64
    python benchmarks/train_speed.py --device cpu --batch 64 256 --markdown
    python benchmarks/train_speed.py --device cuda --seed-001-base-run

For every model the same number of SGD steps is timed two ways, on the same model (same
initial weights), batch size, optimizer and data:

(a) classic: torchvision Dataset + ToTensor + torch DataLoader (shuffle, d2l's worker count),
    a per-batch ``.to(device)``, and the step's loss and accuracy read back to Python with
    ``float()`` into an Accumulator -- what d2l's train_ch6 does, two host syncs per step;
(b) fast: the whole split as uint8 on the device in a ``mu.DeviceLoader``, loss and accuracy
    summed into a device tensor, one host sync at the end.

(a) and (b) alternate (a b a b ...) so both see the same background load; the median of the
repeats is reported.  Every repeat starts a fresh iterator (new DataLoader workers for (a)) and
runs a few untimed steps first, so worker start-up and queue prefetch are NOT counted against
the classic loop -- this makes the ratio conservative.  See benchmarks/README.md.

The models below are compact re-statements of the coursework models in shared/SPEC.md, written
for timing; the notebooks hold the teaching versions (built cell by cell, with the commentary).
"""
import argparse
import copy
import datetime
import os
import platform
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torch.utils import data as tdata
from torchvision import transforms

import my_utils as mu


# ---------------------------------------------------------------- the models

def mlp(*widths, dropout=0.0):
    """Linear-ReLU-...-Linear through `widths` (no activation after the last layer)."""
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def softmax_regression():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def lenet():
    """d2l's LeNet-5: sigmoid activations and average pooling."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10))


def conv_stem_mixer(patch=2, channels=20, hidden=160, blocks=3):
    """01 (seed 000): conv patch stem, 3 mixer blocks without residuals, mean, Linear."""
    tokens = (28 // patch) ** 2
    layers = [nn.Conv2d(1, channels, patch, stride=patch), nn.Flatten(2), mu.Transpose(1, 2)]
    for _ in range(blocks):
        layers += [nn.LayerNorm(channels), mu.Transpose(1, 2), mlp(tokens, hidden, tokens),
                   mu.Transpose(1, 2),
                   nn.LayerNorm(channels), mlp(channels, hidden, channels)]
    layers += [mu.MeanPool(1), nn.Linear(channels, 10)]
    return nn.Sequential(*layers)


class TwoMLPUnfold(nn.Module):
    """02 (seed 001): 14x14 unfold -> (B, 4, 196), MLP over pixels, MLP over patches, mean.

    The report's never-applied Dropout is left out (it did nothing)."""

    def __init__(self):
        super().__init__()
        self.mlp1 = mlp(196, 784, 200)
        self.mlp2 = mlp(4, 64, 10)

    def forward(self, x):
        x = F.unfold(x, (14, 14), stride=14).transpose(1, 2)  # (B, 4 patches, 196 pixels)
        x = self.mlp1(x).transpose(1, 2)  # (B, 200, 4)
        return self.mlp2(x).mean(dim=1)


class MixedConvBlock(nn.Module):
    """03's block: O = sum_k a_k Conv_k(X), a = MLP(spatial mean of X), then BN and ReLU.

    The K convolutions alternate 3x3 and 5x5; those of one size run as one wide conv (same
    arithmetic as K separate ones, fewer kernel launches).  a: softmax over K (our choice)."""

    def __init__(self, c_in, c_out, k=6, mlp_hidden=512):
        super().__init__()
        self.k, self.c_out = k, c_out
        self.n3, self.n5 = (k + 1) // 2, k // 2
        self.conv3 = nn.Conv2d(c_in, self.n3 * c_out, 3, padding=1)
        self.conv5 = nn.Conv2d(c_in, self.n5 * c_out, 5, padding=2)
        self.mix = mlp(c_in, mlp_hidden, mlp_hidden, k)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        a = torch.softmax(self.mix(x.mean((2, 3))), dim=1)  # (B, K)
        b, _, h, w = x.shape
        y = torch.cat([self.conv3(x).view(b, self.n3, self.c_out, h, w),
                       self.conv5(x).view(b, self.n5, self.c_out, h, w)], dim=1)
        y = (a.view(b, self.k, 1, 1, 1) * y).sum(1)
        return F.relu(self.bn(y))


class CifarMixedBlocks(nn.Module):
    """03 (seed 002): 7 blocks 32-32 | avgpool | 64-64(+res) | maxpool | 128-128(+res)-128(+res)
    | maxpool; dropout after each pooling; spatial mean then MLP 1024-512-10.

    `width` is the first group's channels (the report's 32); width 16 is the compact version
    the CPU benchmark uses (a quarter of the convolution work, everything else the same)."""

    def __init__(self, width=32, k=6, dropout=0.25):
        super().__init__()
        c1, c2, c3 = width, 2 * width, 4 * width
        widths = [(3, c1), (c1, c1), (c1, c2), (c2, c2), (c2, c3), (c3, c3), (c3, c3)]
        self.blocks = nn.ModuleList(MixedConvBlock(i, o, k) for i, o in widths)
        self.residual = {3, 5, 6}  # blocks 4, 6, 7 (0-based here)
        self.pool = {1: nn.AvgPool2d(2), 3: nn.MaxPool2d(2), 6: nn.MaxPool2d(2)}
        self.pools = nn.ModuleList(self.pool.values())  # registered for repr/.to()
        self.drop = nn.Dropout(dropout)
        self.head = mlp(c3, 1024, 512, 10)

    def forward(self, x):
        for i, block in enumerate(self.blocks):
            x = block(x) + x if i in self.residual else block(x)
            if i in self.pool:
                x = self.drop(self.pool[i](x))
        return self.head(x.mean((2, 3)))


class PatchTwoMLP(nn.Module):
    """04 (seed 003): 14x14 patches -> Linear(196, 256); MLP 4-128-64 on the transpose;
    MLP 256-32-16; mean over the 64 rows; Linear(16, 10)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(196, 256)
        self.mlp1 = mlp(4, 128, 64)
        self.mlp2 = mlp(256, 32, 16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(F.unfold(x, (14, 14), stride=14).transpose(1, 2))  # (B, 4, 256)
        x = self.mlp1(x.transpose(1, 2)).transpose(1, 2)  # (B, 64, 256)
        return self.head(self.mlp2(x).mean(dim=1))


class KmnistPatchMixer(nn.Module):
    """05 (seed 004): 4x4 patches -> Linear(16, hidden) -> BN; 2 blocks of token MLP
    49-512-49 and channel MLP (the last one ends at 16); mean; Linear(16, 10)."""

    def __init__(self, hidden=64, dropout=0.1):
        super().__init__()
        self.stem = nn.Linear(16, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.token = nn.ModuleList(mlp(49, 512, 49, dropout=dropout) for _ in range(2))
        self.channel = nn.ModuleList([mlp(hidden, 2 * hidden, hidden, dropout=dropout),
                                      mlp(hidden, 2 * hidden, 16, dropout=dropout)])
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = F.unfold(x, 4, stride=4).transpose(1, 2)  # (B, 49, 16)
        x = self.bn(self.stem(x).transpose(1, 2))  # (B, hidden, 49): BN over channels
        for token, channel in zip(self.token, self.channel):
            x = self.drop(token(x)).transpose(1, 2)  # mix the 49 patches -> (B, 49, hidden)
            x = self.drop(channel(x)).transpose(1, 2)  # mix the channels -> (B, C, 49)
        return self.head(x.mean(dim=2))


# key: (label, builder, learning rate for SGD, data set)
MODELS = {
    'softmax': ('softmax regression', softmax_regression, 0.1, 'fashion'),
    'lenet': ('LeNet (sigmoid, avgpool)', lenet, 0.9, 'fashion'),
    '01': ('01 conv-stem mixer', conv_stem_mixer, 0.05, 'fashion'),
    '02': ('02 two-MLP unfold (seed 001)', TwoMLPUnfold, 0.1, 'fashion'),
    '03': ('03 CIFAR mixed-conv blocks', CifarMixedBlocks, 0.01, 'cifar-random'),
    '04': ('04 patch stem + two MLPs', PatchTwoMLP, 0.1, 'fashion'),
    '05': ('05 KMNIST patch mixer', KmnistPatchMixer, 0.01, 'fashion'),
}
ALIASES = {'softmax-regression': 'softmax', 'seed001': '02', 'seed-001': '02', 'all': None}


# ---------------------------------------------------------------- data, both ways

class RandomCifarLike(tdata.Dataset):
    """uint8 (N, 32, 32, 3) arrays served like torchvision's CIFAR10: a PIL image per sample."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def make_loaders(kind, batch, device, n_train=None):
    """-> (classic DataLoader, fast DeviceLoader, note) over the same training examples."""
    workers = mu.get_dataloader_workers()
    if kind == 'fashion':
        root = mu.data_root()
        dataset = torchvision.datasets.FashionMNIST(root=str(root), train=True, download=False,
                                                    transform=transforms.ToTensor())
        if n_train is not None:
            dataset = tdata.Subset(dataset, range(min(n_train, len(dataset))))
        fast, _ = mu.load_data_fashion_mnist(batch, root=root, device=device, n_train=n_train,
                                             n_test=1)
        note = ''
    else:  # random uint8 images in CIFAR-10's shape; speed does not depend on the pixels
        n = 50_000 if n_train is None else n_train
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.int64)
        dataset = RandomCifarLike(images, labels, transforms.ToTensor())
        fast = mu.DeviceLoader(images, labels, batch, shuffle=True, device=device)
        note = 'random uint8 CIFAR-shaped data (3x32x32), not CIFAR-10'
    classic = tdata.DataLoader(dataset, batch, shuffle=True, num_workers=workers)
    return classic, fast, note


def endless(loader):
    """Batches forever; a new epoch starts a new iterator (new workers), as in a training loop."""
    while True:
        yield from loader


# ---------------------------------------------------------------- the two loops

def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def classic_steps(net, optimizer, loss, batches, steps, device):
    """d2l's train_ch6 inner loop: .to(device) per batch, float() of the metrics per step.

    Returns the number of examples seen."""
    net.train()
    metric = mu.Accumulator(3)
    for _ in range(steps):
        X, y = next(batches)
        optimizer.zero_grad()
        X, y = X.to(device), y.to(device)
        y_hat = net(X)
        l = loss(y_hat, y)
        l.backward()
        optimizer.step()
        with torch.no_grad():  # d2l: metric.add(l * X.shape[0], accuracy(y_hat, y), X.shape[0])
            metric.add(l * X.shape[0], float((y_hat.argmax(dim=1) == y).sum()), X.shape[0])
    return metric[2]


def fast_steps(net, optimizer, loss, batches, steps, device, amp=False, compiled=False):
    """train_ch6's own step (mu.train_step): metrics summed on the device into mu.EpochTotals,
    one host read at the end."""
    net.train()
    totals = mu.EpochTotals(device)
    use_amp = amp and device.type == 'cuda'
    autocast = lambda: torch.autocast('cuda', dtype=torch.bfloat16, enabled=use_amp)
    mark_step = compiled and device.type == 'cuda'
    for _ in range(steps):
        X, y = next(batches)
        mu.train_step(net, X, y, loss, optimizer, totals, autocast=autocast, mark_step=mark_step)
    totals.read()  # the one host sync
    return totals.seen


def warm_up(step_fn, loader, steps, budget, device):
    """First contact (allocations, cuDNN, compile, page cache), one step at a time, untimed
    for the table.  Stops after `steps` steps or once the steps after the first (which may
    compile) took `budget` seconds; at least 2 steps.  Returns the fastest step after the
    first, in seconds (for sizing the runs)."""
    batches = endless(loader)
    times = []
    try:
        while len(times) < max(2, steps) and (len(times) < 2 or sum(times[1:]) < budget):
            start = time.perf_counter()
            step_fn(batches, 1)
            sync(device)
            times.append(time.perf_counter() - start)
    finally:
        batches.close()
    return min(times[1:])


def time_run(step_fn, loader, settle, steps, device):
    """Fresh iterator, `settle` untimed steps, then `steps` timed ones -> examples/sec."""
    batches = endless(loader)
    try:
        if settle:
            step_fn(batches, settle)
        sync(device)
        start = time.perf_counter()
        examples = step_fn(batches, steps)
        sync(device)
        seconds = time.perf_counter() - start
    finally:
        batches.close()  # ends the DataLoader iterator: its workers shut down before the next run
    return examples / seconds


def peak_memory_mib(device):
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == 'darwin' else 2**10)


def bench_model(key, batch, device, args):
    label, build, lr, kind = MODELS[key]
    classic_loader, fast_loader, note = make_loaders(kind, batch, device, args.n_train)
    torch.manual_seed(0)
    if key == '03':
        base = build(width=args.cifar_width)
        label += f' w{args.cifar_width}*'
    else:
        base = build()
    params = sum(p.numel() for p in base.parameters())
    loss = nn.CrossEntropyLoss()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)

    def path(loader, steps_fn, compile_it=False, channels_last=False):
        """(run function, loader) for one way of training; each its own copy of the same
        initial weights and its own optimizer state."""
        net = copy.deepcopy(base).to(device)
        if channels_last:  # as train_ch6(channels_last=True) does
            net.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        model = mu.compile_model(net, device) if compile_it else net
        return (lambda batches, n: steps_fn(model, opt, batches, n), loader)

    fast = lambda m, o, b, n: fast_steps(m, o, loss, b, n, device, args.amp)  # noqa: E731
    paths = {
        'classic': path(classic_loader,
                        lambda m, o, b, n: classic_steps(m, o, loss, b, n, device)),
        'fast': path(fast_loader, fast)}
    if args.compile:
        paths['compiled'] = path(
            fast_loader, lambda m, o, b, n: fast_steps(m, o, loss, b, n, device, args.amp, True),
            compile_it=True)
    if args.channels_last:
        paths['channels_last'] = path(fast_loader, fast, channels_last=True)
    step_time = {name: warm_up(run, loader, args.warmup, args.seconds, device)
                 for name, (run, loader) in paths.items()}
    # Each repeat starts fresh DataLoader workers; untimed "settle" steps let them reach steady
    # state (their queue holds 2 batches per worker).  When a step is slower than the workers
    # (compute-bound models) one step is enough.
    settle = 2 * max(1, classic_loader.num_workers) + 1 if step_time['classic'] < 0.25 else 1
    steps = args.steps
    if steps is None:  # same count for every path: the slowest one runs about args.seconds
        steps = int(args.seconds / max(step_time.values()))
        # Stay inside one epoch's full batches: no run pays for a new set of workers mid-way,
        # and a compiled model never sees the smaller last batch (a recompile) while timed.
        full_batches = len(classic_loader.dataset) // batch
        steps = max(2, min(steps, args.max_steps, full_batches - settle))
    settle = min(settle, steps)
    speeds = {name: [] for name in paths}
    for _ in range(args.repeats):  # classic, fast(, the extra paths), classic, fast, ...
        for name, (run, loader) in paths.items():
            speeds[name].append(time_run(run, loader, settle, steps, device))
    row = {'model': label, 'key': key, 'params': params, 'batch': batch, 'steps': steps,
           'peak_mib': peak_memory_mib(device), 'note': note}
    for name, values in speeds.items():
        row[name] = statistics.median(values)
        row[name + '_all'] = values
    row['ratio'] = row['fast'] / row['classic']
    for name in EXTRA_PATHS:
        if name in row:
            row['ratio_' + name] = row[name] / row['classic']
    del classic_loader, fast_loader, paths
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return row


# ---------------------------------------------------------------- output

# The optional fast paths: row key -> column label.
EXTRA_PATHS = {'compiled': 'fast+compile', 'channels_last': 'fast+channels_last'}

# CPU targets from the issue (2 cores, batch 64): fast/classic at least ...
CPU_TARGETS = {'softmax': 10.0, 'lenet': 2.5, '02': 2.0}


def header(device, args, table=True):
    cpus = mu.usable_cpus()
    where = str(device)
    if device.type == 'cuda':
        where += f' ({torch.cuda.get_device_name(device)})'
    extras = ['amp bf16' if args.amp and device.type == 'cuda' else '',
              'one more path, fast + mu.compile_model' if args.compile else '',
              'one more path, fast + the net in channels_last layout' if args.channels_last
              else '']
    extras = ', '.join(e for e in extras if e)
    line = (f'# device {where} | torch {torch.__version__} | torchvision {torchvision.__version__} | '
            f'CPUs {cpus} usable of {os.cpu_count()}, torch threads {torch.get_num_threads()}, '
            f'DataLoader workers {mu.get_dataloader_workers()} | Python {platform.python_version()} | '
            f'{datetime.datetime.now().isoformat(timespec="seconds")}')
    if not table:
        return line
    return (line + '\n'
            f'# SGD; per model: up to {args.warmup} warm-up steps, then the median of {args.repeats} '
            f'alternating classic/fast runs of `steps` timed steps'
            + (f' | fast path: {extras}' if extras else ''))


def format_table(rows, device, markdown=False):
    mem = ('peak CUDA MiB' if device.type == 'cuda'
           else 'peak RSS MiB (process-wide)')
    extras = [name for name in EXTRA_PATHS if any(name in r for r in rows)]
    cols = ['model', 'params', 'batch', 'steps', 'classic ex/s', 'fast ex/s', 'ratio']
    for name in extras:
        cols += [f'{EXTRA_PATHS[name]} ex/s', 'ratio']
    body = []
    for r in rows:
        cells = [r['model'], f"{r['params']:,}", str(r['batch']), str(r['steps']),
                 f"{r['classic']:,.0f}", f"{r['fast']:,.0f}", f"{r['ratio']:.2f}x"]
        for name in extras:
            cells += [f"{r[name]:,.0f}", f"{r['ratio_' + name]:.2f}x"]
        body.append(cells + [f"{r['peak_mib']:,.0f}"])
    cols.append(mem)
    if markdown:
        lines = ['| ' + ' | '.join(cols) + ' |',
                 '| ' + ' | '.join(['---'] + ['---:'] * (len(cols) - 1)) + ' |']
        lines += ['| ' + ' | '.join(r) + ' |' for r in body]
    else:
        widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(cols)]
        fmt = lambda cells: '  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                                      for i, (c, w) in enumerate(zip(cells, widths)))
        lines = [fmt(cols), fmt(['-' * w for w in widths])] + [fmt(r) for r in body]
    notes = sorted({r['note'] for r in rows if r['note']})
    lines += [f'* {n}' for n in notes]
    return '\n'.join(lines)


def target_lines(rows, device):
    if device.type != 'cpu':
        return []
    out = []
    for r in rows:
        if r['batch'] == 64 and r['key'] in CPU_TARGETS:
            want = CPU_TARGETS[r['key']]
            ratios = [('fast', r['ratio'])]
            ratios += [(label, r.get('ratio_' + name)) for name, label in EXTRA_PATHS.items()]
            for path, ratio in ratios:
                if ratio is not None:
                    out.append(f"target {r['model']}, batch 64: {path}/classic {ratio:.2f}x "
                               f"(want >= {want:g}x) -> {'PASS' if ratio >= want else 'MISS'}")
    return out


# ---------------------------------------------------------------- seed 001's base run

def seed_001_base_run(device, args):
    """Seed 001's reported base run end to end on the fast path: model 02, batch 64, lr 0.1,
    SGD, Xavier init, test accuracy every epoch, through mu.train_ch6."""
    epochs = args.epochs
    print(f'seed 001 base run: batch 64, lr 0.1, {epochs} epoch{"s" * (epochs != 1)} on {device} '
          f'{"(amp) " * args.amp}{"(compile) " * args.compile}'
          f'(report: 100 epochs, 21,217.8 examples/sec, 719.6 s on cuda:0)', flush=True)
    mu.set_seed(0)
    start = time.perf_counter()
    train_iter, test_iter = mu.load_data_fashion_mnist(64, device=device, n_train=args.n_train)
    loaded = time.perf_counter() - start
    history = mu.train_ch6(TwoMLPUnfold(), train_iter, test_iter, epochs, 0.1, device,
                           animate=False, amp=args.amp, compile=args.compile)
    sync(device)
    total = time.perf_counter() - start
    print(f'wall time {total:.1f} s end to end ({loaded:.1f} s loading the data, '
          f'{total - loaded:.1f} s in train_ch6 for {epochs} epoch{"s" * (epochs != 1)} with '
          f'evaluation)')
    if epochs != 100:
        print(f'-> projected 100 epochs: {(total - loaded) * 100 / epochs:.0f} s '
              f'(report: 719.6 s)')
    if device.type == 'cuda':
        print(f'peak CUDA memory {torch.cuda.max_memory_allocated(device) / 2**20:,.0f} MiB')
    return history


# ---------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default=None, help='cpu, cuda or cuda:N (default: mu.try_gpu())')
    p.add_argument('--batch', type=int, nargs='+', default=[64],
                   help='batch size(s); one table per batch size (e.g. --batch 64 256)')
    p.add_argument('--steps', type=int, default=None,
                   help='timed optimizer steps per run, the same for both paths (default: sized '
                        'from the warm-up so the slower path runs about --seconds, at least 2, '
                        'at most --max-steps and one epoch)')
    p.add_argument('--seconds', type=float, default=None,
                   help='target length of one timed run of the slower path (default 1 on CPU, '
                        '2 on CUDA)')
    p.add_argument('--max-steps', type=int, default=None,
                   help='upper bound for the sized step count (default 200 on CPU, 900 on CUDA)')
    p.add_argument('--models', nargs='+', default=['all'],
                   help=f'any of {", ".join(MODELS)} (default: all)')
    p.add_argument('--repeats', type=int, default=5, help='alternating classic/fast runs (median)')
    p.add_argument('--warmup', type=int, default=5, help='untimed first steps per path and model')
    p.add_argument('--amp', action='store_true', help='bf16 autocast in the fast path (CUDA only)')
    p.add_argument('--compile', action='store_true',
                   help='also time the fast path with the model compiled by mu.compile_model '
                        '(CUDA graphs on CUDA, C++ kernels on the CPU), as one more column')
    p.add_argument('--channels-last', action='store_true',
                   help='also time the fast path with the net in the channels_last memory layout '
                        '(as train_ch6(channels_last=True)), as one more column')
    p.add_argument('--cifar-width', type=int, default=None,
                   help="model 03's first channel width: 32 is the report's model (default on "
                        'CUDA), 16 a compact version with the same structure (default on CPU, '
                        'where the full one takes seconds per step)')
    p.add_argument('--markdown', action='store_true', help='print markdown tables')
    p.add_argument('--n-train', type=int, default=None,
                   help='use only the first N training examples (smoke tests)')
    p.add_argument('--seed-001-base-run', action='store_true',
                   help="time seed 001's full base run through mu.train_ch6 instead")
    p.add_argument('--epochs', type=int, default=100, help='epochs for --seed-001-base-run')
    args = p.parse_args(argv)
    keys = []
    for m in args.models:
        m = ALIASES.get(m.lower(), m.lower())
        if m is None:
            keys += [k for k in MODELS if k not in keys]
        elif m in MODELS:
            keys += [m] if m not in keys else []
        else:
            p.error(f'unknown model {m!r}; choose from {", ".join(MODELS)} or all')
    args.models = keys
    if min(args.batch) < 1 or args.repeats < 1 or (args.steps is not None and args.steps < 1):
        p.error('--batch, --steps and --repeats must be positive')
    return args


def main(argv=None):
    """Run the benchmark, print the tables, return the rows (list of dicts)."""
    args = parse_args(argv)
    device = torch.device(args.device) if args.device else mu.try_gpu()
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda asked for, but torch sees no CUDA GPU')
    if device.type != 'cuda' and args.amp:
        print('note: --amp only applies on CUDA; ignored on', device)
    gpu = device.type == 'cuda'
    if args.seconds is None:
        args.seconds = 2.0 if gpu else 1.0
    if args.cifar_width is None:
        args.cifar_width = 32 if gpu else 16
    if args.max_steps is None:
        args.max_steps = 900 if gpu else 200
    print(header(device, args, table=not args.seed_001_base_run), flush=True)
    if args.seed_001_base_run:
        seed_001_base_run(device, args)
        return []
    rows = []
    for batch in args.batch:
        batch_rows = []
        for key in args.models:
            row = bench_model(key, batch, device, args)
            print(f"  {row['model']:<32} batch {batch:>4}: classic {row['classic']:>10,.0f} "
                  f"fast {row['fast']:>10,.0f} ex/s  ({row['ratio']:.2f}x)", flush=True)
            batch_rows.append(row)
        print()
        print(format_table(batch_rows, device, args.markdown))
        print()
        rows += batch_rows
    for line in target_lines(rows, device):
        print(line)
    return rows


if __name__ == '__main__':
    main()
