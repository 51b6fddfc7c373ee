"""One full-size training epoch of a coursework model: how long a full run takes.

    OMP_NUM_THREADS=1 python benchmarks/full_size_epoch.py 03      # CIFAR-10 model, notebook 03
    OMP_NUM_THREADS=1 python benchmarks/full_size_epoch.py 05      # KMNIST model, notebook 05
    python benchmarks/full_size_epoch.py 03 --device cuda           # on a GPU (data on the GPU)

The data is random uint8 images of the real data set's size and shape (CIFAR-10: 50,000 train /
10,000 test, 3x32x32; KMNIST: 60,000 / 10,000, 1x28x28): the time of a step does not depend on
the pixels, and the real sets are not on every machine. The model comes from
audit.models (tests/test_models.py checks it against the notebook), and it trains
through mu.train_ch6 with the notebook's optimizer, batch size, augmentation and scaling.

When a whole epoch would take longer than --max-minutes (a quick probe of a few batches says),
only --batches training batches and --test-batches test batches are timed, and the epoch is
extrapolated from them: the output says so. The result goes to benchmarks/results/ as JSON.
On CUDA the peak is torch.cuda.max_memory_allocated (the data set on the device included);
--tiny swaps in a small model and set (the pipeline only: tests/test_gpu_session.py).
"""
import argparse
import datetime
import itertools
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch
from torch import nn

import my_utils as mu
from audit import models
from audit.provenance import _cpu_model

RESULTS = Path(__file__).resolve().parent / 'results'

# What each notebook trains: data shape, optimizer, batch, augmentation, scaling, and the
# full run's rows as (row, epochs, batch size); every row runs on 3 seeds in full mode.
SETUPS = {
    '03': dict(
        notebook='03_cifar10_mixed_conv_blocks', build=models.net_03, shape=(3, 32, 32),
        n_train=50_000, n_test=10_000, batch=64,
        optimizer=lambda p: torch.optim.Adam(p, lr=0.002, weight_decay=1e-5), lr=0.002,
        augment=lambda: nn.Sequential(mu.RandomCrop(32, padding=4), mu.RandomHorizontalFlip()),
        normalize=((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        rows=[('base', 60, 64), ('cosine', 60, 64)]),
    '05': dict(
        notebook='05_kmnist_patch_mixer', build=models.net_05, shape=(1, 28, 28),
        n_train=60_000, n_test=10_000, batch=128,
        optimizer=lambda p: torch.optim.Adam(p, lr=0.001, weight_decay=5e-4), lr=0.001,
        augment=lambda: None, normalize=((0.1918,), (0.3483,)),
        rows=[('base', 20, 128), ('b64 lr0.01 20ep', 20, 64), ('b128 lr0.01 30ep', 30, 128),
              ('b256 lr0.001 30ep', 30, 256), ('cosine (beyond)', 20, 128)]),
}
SEEDS = 3


class FirstBatches:
    """The first n batches of a loader (a fresh shuffle each epoch), with len() = n."""

    def __init__(self, loader, n):
        self.loader, self.n = loader, min(n, len(loader))
        self.dataset = loader.dataset

    def __len__(self):
        return self.n

    def __iter__(self):
        return itertools.islice(iter(self.loader), self.n)


def tiny(setup, key):
    """The same set-up on a small model and data set: runs in seconds, measures nothing."""
    build = (lambda: models.net_03(width=4)) if key == '03' else (lambda: models.net_05(hidden=32))
    return dict(setup, build=build, n_train=2 * setup['batch'], n_test=setup['batch'])


def loaders(setup, seed=0, device='cpu'):
    g = torch.Generator().manual_seed(seed)
    make = lambda n: (torch.randint(0, 256, (n, *setup['shape']), dtype=torch.uint8, generator=g),
                      torch.randint(0, 10, (n,), generator=g))
    (xtr, ytr), (xte, yte) = make(setup['n_train']), make(setup['n_test'])
    train = mu.DeviceLoader(xtr, ytr, setup['batch'], shuffle=True, device=device,
                            augment=setup['augment'](), normalize=setup['normalize'], seed=seed)
    test = mu.DeviceLoader(xte, yte, setup['batch'], device=device, normalize=setup['normalize'])
    return train, test


def timed_epoch(setup, train, test, device='cpu'):
    """One epoch through train_ch6: (train seconds, test seconds, history)."""
    torch.manual_seed(0)
    history = mu.train_ch6(setup['build'](), train, test, 1, setup['lr'], device,
                           optimizer=setup['optimizer'], init=None, animate=False)
    train_s = history.train_time[0]
    return train_s, history.epoch_time[0] - train_s, history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', choices=sorted(SETUPS))
    parser.add_argument('--max-minutes', type=float, default=25.0,
                        help='time a whole epoch only when the probe says it takes less (25)')
    parser.add_argument('--batches', type=int, default=100,
                        help='training batches timed when a whole epoch is too long (100)')
    parser.add_argument('--test-batches', type=int, default=20,
                        help='test batches timed when a whole epoch is too long (20)')
    parser.add_argument('--probe', type=int, default=3, help='batches of the probe (3)')
    parser.add_argument('--out', default=None, help='JSON file (default benchmarks/results/...)')
    parser.add_argument('--device', default='cpu', help="'cpu' (default), 'cuda', 'cuda:1', ...")
    parser.add_argument('--tiny', action='store_true',
                        help='a small model and data set: checks the pipeline, measures nothing')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda asked for, but torch sees no CUDA GPU')
    setup = tiny(SETUPS[args.model], args.model) if args.tiny else SETUPS[args.model]
    hardware = torch.cuda.get_device_name(device) if device.type == 'cuda' else _cpu_model()
    train, test = loaders(setup, device=device)
    n_train_batches, n_test_batches = len(train), len(test)
    print(f"# {setup['notebook']}: {sum(p.numel() for p in setup['build']().parameters()):,} "
          f"parameters; random uint8 data of the real size: {setup['n_train']:,} train / "
          f"{setup['n_test']:,} test, {'x'.join(map(str, setup['shape']))}; batch {setup['batch']}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {hardware} ({device})",
          flush=True)

    # The probe: a few batches (the first step carries one-off costs, so it is not the measure).
    p_train, p_test, _ = timed_epoch(setup, FirstBatches(train, args.probe), FirstBatches(test, 1),
                                     device)
    probe_epoch = p_train / args.probe * n_train_batches + p_test * n_test_batches
    full = probe_epoch <= args.max_minutes * 60
    print(f'probe: {args.probe} train batches in {p_train:.1f} s -> an epoch would take about '
          f'{probe_epoch / 60:.1f} min: '
          + ('timing the whole epoch' if full else
             f'over {args.max_minutes:g} min, so timing {args.batches} train and '
             f'{args.test_batches} test batches and extrapolating'), flush=True)

    if full:
        if device.type == 'cuda':  # the peak of the measured epoch, not of the probe
            torch.cuda.reset_peak_memory_stats(device)
        train_s, test_s, history = timed_epoch(setup, train, test, device)
        timed = (n_train_batches, n_test_batches)
        epoch_s = train_s + test_s
    else:
        timed = (min(args.batches, n_train_batches), min(args.test_batches, n_test_batches))
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        train_s, test_s, history = timed_epoch(setup, FirstBatches(train, timed[0]),
                                               FirstBatches(test, timed[1]), device)
        epoch_s = train_s / timed[0] * n_train_batches + test_s / timed[1] * n_test_batches
    train_examples = min(timed[0] * setup['batch'], setup['n_train'])
    examples_per_s = train_examples / train_s
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    peak_cuda_mib = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == 'cuda'
                     else None)

    # The full run: every row on SEEDS seeds; rows at another batch size are assumed to train
    # the same number of examples a second (one epoch = the same examples at any batch size).
    rows = [{'row': r, 'epochs': e, 'batch': b, 'seeds': SEEDS, 'hours': e * epoch_s * SEEDS / 3600}
            for r, e, b in setup['rows']]
    base = rows[0]
    total_h = sum(r['hours'] for r in rows)
    result = {
        'notebook': setup['notebook'], 'model': f"audit.models.net_{args.model}()",
        'date': datetime.date.today().isoformat(), 'torch': torch.__version__,
        'python': platform.python_version(), 'cpu': _cpu_model(), 'threads': torch.get_num_threads(),
        'omp_num_threads': os.environ.get('OMP_NUM_THREADS'),
        'load_average': os.getloadavg()[0], 'device': str(device), 'hardware': hardware,
        'tiny': args.tiny, 'batch': setup['batch'],
        'n_train': setup['n_train'], 'n_test': setup['n_test'],
        'whole_epoch_timed': full, 'timed_train_batches': timed[0], 'timed_test_batches': timed[1],
        'epoch_train_batches': n_train_batches, 'epoch_test_batches': n_test_batches,
        'train_s': round(train_s, 1), 'test_s': round(test_s, 1),
        'epoch_s': round(epoch_s, 1), 'examples_per_s': round(examples_per_s, 1),
        'peak_rss_mib': round(peak_mib), 'probe_epoch_s': round(probe_epoch, 1),
        'peak_cuda_mib': None if peak_cuda_mib is None else round(peak_cuda_mib),
        'base_row_h': round(base['epochs'] * epoch_s / 3600, 2),
        'base_row_3_seeds_h': round(base['hours'], 1),
        'rows': [dict(r, hours=round(r['hours'], 1)) for r in rows],
        'full_run_h': round(total_h, 1),
        'command': ('OMP_NUM_THREADS=1 python benchmarks/full_size_epoch.py ' + args.model
                    + (f' --device {args.device}' if device.type != 'cpu' else '')
                    + (' --tiny' if args.tiny else '')),
    }
    how = ('measured over the whole epoch' if full else
           f'extrapolated from {timed[0]} of {n_train_batches} train batches and {timed[1]} of '
           f'{n_test_batches} test batches')
    print(f"one epoch: {epoch_s / 60:.1f} min ({how}); train {examples_per_s:.1f} examples/s; "
          f"peak memory {peak_mib:,.0f} MiB"
          + (f", peak CUDA memory {peak_cuda_mib:,.0f} MiB" if peak_cuda_mib is not None else ''))
    print(f"base row: {base['epochs']} epochs = {result['base_row_h']:.1f} h a seed; full run "
          f"(every row x {SEEDS} seeds, {sum(r['epochs'] for r in rows) * SEEDS} epochs): "
          f"{total_h:.1f} h on this {'GPU' if device.type == 'cuda' else 'CPU'}")
    out = Path(args.out) if args.out else RESULTS / f"full_size_epoch_{args.model}_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + '\n')
    print(f'written {out}')
    return result


if __name__ == '__main__':
    main()
    sys.exit(0)
