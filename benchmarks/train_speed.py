"""Training speed: the classic d2l loop against my_utils' fast path, model by model.

    python benchmarks/train_speed.py --device cpu --batch 64 256 --markdown

The same SGD steps (same initial weights, batch and data) are timed the classic way (DataLoader,
two host syncs per step, as d2l's train_ch6) and on the fast path (the split on the device,
mu.train_step), alternating; benchmarks/README.md says how and why.  The coursework models come
from audit.models, which tests/test_models.py checks against the notebooks.
"""
import argparse
import contextlib
import copy
import datetime
import json
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
from torch.utils import data as tdata
from torchvision import transforms

import my_utils as mu
from audit import models


def lenet():  # d2l's LeNet-5: sigmoid activations and average pooling
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))


# key: (label, builder, SGD learning rate, data set)
MODELS = {
    'softmax': ('softmax regression', lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 10)),
                0.1, 'fashion'),
    'lenet': ('LeNet (sigmoid, avgpool)', lenet, 0.9, 'fashion'),
    '01': ('01 conv-stem mixer', models.net_01, 0.05, 'fashion'),
    '02': ('02 two-MLP unfold (seed 001)', models.net_02, 0.1, 'fashion'),
    '03': ('03 CIFAR mixed-conv blocks', models.net_03, 0.01, 'cifar-random'),
    '04': ('04 patch stem + two MLPs', models.net_04, 0.1, 'fashion'),
    '05': ('05 KMNIST patch mixer', models.net_05, 0.01, 'fashion'),
}
ALIASES = {'softmax-regression': 'softmax', 'seed001': '02', 'seed-001': '02'}
EXTRA_PATHS = {'amp': 'fast+amp', 'compiled': 'fast+compile', 'channels_last': 'fast+channels_last'}
CPU_TARGETS = {'softmax': 10.0, 'lenet': 2.5, '02': 2.0}  # the issue's, batch 64 on 2 cores


class RandomCifarLike(tdata.Dataset):
    """uint8 (N, 32, 32, 3) images served as torchvision's CIFAR10 serves them: PIL per sample."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return transforms.functional.to_tensor(Image.fromarray(self.images[i])), int(self.labels[i])


def make_loaders(kind, batch, device, n_train=None):
    """-> (classic DataLoader, fast DeviceLoader, note) over the same training examples."""
    if kind == 'fashion':
        root = mu.data_root()
        dataset = torchvision.datasets.FashionMNIST(str(root), train=True,
                                                    transform=transforms.ToTensor())
        if n_train is not None:
            dataset = tdata.Subset(dataset, range(min(n_train, len(dataset))))
        fast, _ = mu.load_data_fashion_mnist(batch, root=root, device=device, n_train=n_train,
                                             n_test=1)
        note = ''
    else:  # speed does not depend on the pixels, and CIFAR-10 may not be on the machine
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, size=(n_train or 50_000, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, size=len(images))
        dataset = RandomCifarLike(images, labels)
        fast = mu.DeviceLoader(images, labels, batch, shuffle=True, device=device)
        note = 'random uint8 CIFAR-shaped data (3x32x32), not CIFAR-10'
    workers = mu.get_dataloader_workers()
    return tdata.DataLoader(dataset, batch, shuffle=True, num_workers=workers), fast, note


def endless(loader):  # a new epoch is a new iterator (new workers), as in a training loop
    while True:
        yield from loader


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def classic_steps(net, opt, loss, batches, steps, device):
    """d2l's train_ch6 inner loop; returns the examples seen."""
    metric = mu.Accumulator(3)
    for _ in range(steps):
        X, y = next(batches)
        opt.zero_grad()
        X, y = X.to(device), y.to(device)
        y_hat = net(X)
        l = loss(y_hat, y)
        l.backward()
        opt.step()
        with torch.no_grad():  # float() of loss and accuracy: d2l's two syncs per step
            metric.add(l * X.shape[0], float((y_hat.argmax(dim=1) == y).sum()), X.shape[0])
    return metric[2]


def fast_steps(net, opt, loss, batches, steps, device, amp=False, compiled=False):
    """train_ch6's own step; the metrics stay on the device until the one read at the end."""
    totals = mu.EpochTotals(device)
    autocast = lambda: torch.autocast('cuda', torch.bfloat16, enabled=amp)  # noqa: E731
    for _ in range(steps):
        X, y = next(batches)
        mu.train_step(net, X, y, loss, opt, totals, autocast=autocast,
                      mark_step=compiled and device.type == 'cuda')  # CUDA graphs need it
    totals.read()
    return totals.seen


def timed(run, batches, steps, device):
    """-> (seconds, examples) of `steps` steps; on CUDA the clock waits for queued kernels."""
    sync(device)
    start = time.perf_counter()
    examples = run(batches, steps)
    sync(device)
    return time.perf_counter() - start, examples


def warm_up(run, loader, args, device):
    """Untimed first contact (allocation, cuDNN, compilation); -> the fastest later step's s.
    Up to --warmup steps (at least 2), stopping once those after the first took --seconds."""
    times = []
    with contextlib.closing(endless(loader)) as batches:
        while len(times) < max(2, args.warmup) and (len(times) < 2
                                                    or sum(times[1:]) < args.seconds):
            times.append(timed(run, batches, 1, device)[0])
    return min(times[1:])


def peak_memory_mib(device):
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == 'darwin' else 2**10)


def has_conv(net):  # channels_last changes only 4-D weights, i.e. convolutions
    return any(p.dim() == 4 for p in net.parameters())


def bench_model(key, batch, device, args):
    label, build, lr, kind = MODELS[key]
    classic_loader, fast_loader, note = make_loaders(kind, batch, device, args.n_train)
    torch.manual_seed(0)
    base = build(width=args.cifar_width) if key == '03' else build()
    label += f' w{args.cifar_width}*' if key == '03' else ''
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    amp = args.amp and device.type == 'cuda'
    loss = nn.CrossEntropyLoss()

    def path(steps_fn, loader, compile_it=False, channels_last=False, **kw):
        # Its own copy of the initial weights and its own optimizer, set up as train_ch6 does.
        net = copy.deepcopy(base).to(device)
        if channels_last:
            net.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        model = (mu.compile_model(net, device) if compile_it else net).train()
        return lambda b, n: steps_fn(model, opt, loss, b, n, device, **kw), loader

    paths = {'classic': path(classic_steps, classic_loader),
             'fast': path(fast_steps, fast_loader, amp=amp)}
    if args.amp_path and device.type == 'cuda':
        paths['amp'] = path(fast_steps, fast_loader, amp=True)
    if args.compile:
        paths['compiled'] = path(fast_steps, fast_loader, compile_it=True, amp=amp, compiled=True)
    if args.channels_last and has_conv(base):  # a net without convolutions is unchanged
        paths['channels_last'] = path(fast_steps, fast_loader, channels_last=True, amp=amp)
    step_s = {name: warm_up(run, loader, args, device) for name, (run, loader) in paths.items()}
    # Untimed steps per run let new workers fill their queue (2 batches each); one is enough
    # when a step is slower than the workers.
    untimed = 2 * max(1, classic_loader.num_workers) + 1 if step_s['classic'] < 0.25 else 1
    steps = args.steps
    if steps is None:  # the slowest path runs about --seconds, inside one epoch's full batches
        # (no new workers, and no smaller last batch that would make a compiled net recompile)
        full = len(classic_loader.dataset) // batch
        sized = int(args.seconds / max(step_s.values()))
        steps = max(2, min(sized, args.max_steps, full - untimed))
    untimed = min(untimed, steps)
    speeds = {name: [] for name in paths}
    for _ in range(args.repeats):  # alternating, so every path sees the same background load
        for name, (run, loader) in paths.items():
            # A fresh iterator per run (closing it ends the DataLoader's workers); its first
            # `untimed` steps are not charged to the classic loop.
            with contextlib.closing(endless(loader)) as batches:
                run(batches, untimed)
                seconds, examples = timed(run, batches, steps, device)
            speeds[name].append(examples / seconds)
    row = {'model': label, 'key': key, 'params': sum(p.numel() for p in base.parameters()),
           'batch': batch, 'steps': steps, 'peak_mib': peak_memory_mib(device), 'note': note}
    for name, values in speeds.items():
        row[name], row[name + '_all'] = statistics.median(values), values
        if name != 'classic':
            row['ratio' if name == 'fast' else 'ratio_' + name] = row[name] / row['classic']
    return row


def header(device, args):
    gpu = device.type == 'cuda'
    name = f' ({torch.cuda.get_device_name(device)})' if gpu else ''
    line = (f'# device {device}{name} | torch {torch.__version__} | torchvision '
            f'{torchvision.__version__} | CPUs {mu.usable_cpus()} usable of {os.cpu_count()}, '
            f'torch threads {torch.get_num_threads()}, DataLoader workers '
            f'{mu.get_dataloader_workers()} | Python {platform.python_version()} | '
            f'{datetime.datetime.now().isoformat(timespec="seconds")}')
    extras = [text for on, text in [(args.amp and gpu, 'amp bf16'),
                                    (args.amp_path and gpu, 'one more path, fast + bf16 autocast'),
                                    (args.compile, 'one more path, fast + mu.compile_model'),
                                    (args.channels_last, 'one more path, fast + the net in '
                                                         'channels_last layout (nets with '
                                                         'convolutions)')] if on]
    return line if args.seed_001_base_run else (
        f'{line}\n# SGD; per model: up to {args.warmup} warm-up steps, then the median of '
        f'{args.repeats} alternating classic/fast runs of `steps` timed steps'
        + (f' | fast path: {", ".join(extras)}' if extras else ''))


def format_table(rows, device, markdown=False):
    extras = [name for name in EXTRA_PATHS if any(name in r for r in rows)]
    cols = ['model', 'params', 'batch', 'steps', 'classic ex/s', 'fast ex/s', 'ratio']
    cols += [c for name in extras for c in (f'{EXTRA_PATHS[name]} ex/s', 'ratio')]
    cols.append('peak CUDA MiB' if device.type == 'cuda' else 'peak RSS MiB (process-wide)')
    body = [[r['model'], f"{r['params']:,}", str(r['batch']), str(r['steps']),
             f"{r['classic']:,.0f}", f"{r['fast']:,.0f}", f"{r['ratio']:.2f}x"]
            + [c for name in extras for c in ((f"{r[name]:,.0f}", f"{r['ratio_' + name]:.2f}x")
                                              if name in r else ('-', '-'))]
            + [f"{r['peak_mib']:,.0f}"] for r in rows]
    if markdown:
        lines = ['| ' + ' | '.join(cells) + ' |'
                 for cells in [cols, ['---'] + ['---:'] * (len(cols) - 1)] + body]
    else:
        widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(cols)]
        lines = ['  '.join(c.ljust(w) if i == 0 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(cells, widths)))
                 for cells in [cols, ['-' * w for w in widths]] + body]
    return '\n'.join(lines + [f'* {n}' for n in sorted({r['note'] for r in rows if r['note']})])


def target_lines(rows, device):
    out = []
    for r in rows if device.type == 'cpu' else []:
        want = CPU_TARGETS.get(r['key'])
        if r['batch'] != 64 or want is None:
            continue
        for path, ratio in [('fast', r['ratio'])] + [(label, r.get('ratio_' + name))
                                                    for name, label in EXTRA_PATHS.items()]:
            if ratio is not None:
                out.append(f"target {r['model']}, batch 64: {path}/classic {ratio:.2f}x "
                           f"(want >= {want:g}x) -> {'PASS' if ratio >= want else 'MISS'}")
    return out


def seed_001_base_run(device, args):
    """Seed 001's reported base run through mu.train_ch6 on the fast path: model 02, batch 64,
    lr 0.1, SGD, Xavier init, test accuracy every epoch."""
    n = args.epochs
    print(f'seed 001 base run: batch 64, lr 0.1, {n} epoch(s) on {device} '
          f'{"(amp) " * args.amp}{"(compile) " * args.compile}'
          f'(report: 100 epochs, 21,217.8 examples/sec, 719.6 s on cuda:0)', flush=True)
    mu.set_seed(0)
    start = time.perf_counter()
    train_iter, test_iter = mu.load_data_fashion_mnist(64, device=device, n_train=args.n_train)
    loaded = time.perf_counter() - start
    history = mu.train_ch6(models.net_02(), train_iter, test_iter, n, 0.1, device,
                           animate=False, amp=args.amp, compile=args.compile)
    sync(device)
    trained = time.perf_counter() - start - loaded
    print(f'wall time {loaded + trained:.1f} s end to end ({loaded:.1f} s loading the data, '
          f'{trained:.1f} s in train_ch6 for {n} epoch(s) with evaluation)')
    if n != 100:
        print(f'-> projected 100 epochs: {trained * 100 / n:.0f} s (report: 719.6 s)')
    if device.type == 'cuda':
        print(f'peak CUDA memory {torch.cuda.max_memory_allocated(device) / 2**20:,.0f} MiB')
    return history


def write_rows(path, head, rows):
    """The rows so far as JSON, written through a rename (a reader never sees half a file)."""
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        json.dump({'header': head, 'rows': rows}, f, indent=1)
    os.replace(tmp, path)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add = p.add_argument
    add('--device', help='cpu, cuda or cuda:N (default: mu.try_gpu())')
    add('--batch', type=int, nargs='+', default=[64], help='batch size(s), one table each')
    add('--models', nargs='+', default=['all'], help=f'any of {", ".join(MODELS)}, or all')
    add('--repeats', type=int, default=5, help='alternating runs per path (the median is shown)')
    add('--steps', type=int, help='timed steps per run (default: sized from the warm-up)')
    add('--seconds', type=float, help='length of the slowest path\'s run (default 1 CPU, 2 CUDA)')
    add('--max-steps', type=int, help='most sized steps (default 200 CPU, 900 CUDA)')
    add('--warmup', type=int, default=5, help='untimed first steps per path and model')
    add('--amp', action='store_true', help='bf16 autocast in the fast paths (CUDA only)')
    add('--amp-path', action='store_true',
        help='also time the fast path with bf16 autocast, beside the float32 one (CUDA only)')
    add('--compile', action='store_true', help='also time the fast path with mu.compile_model')
    add('--channels-last', action='store_true',
        help='also time the fast path with the net in channels_last layout (nets with '
             'convolutions only)')
    add('--cifar-width', type=int, help="03's first width: 32 the report's (default on CUDA), "
                                        '16 a quarter of the convolution work (default on CPU)')
    add('--markdown', action='store_true', help='print markdown tables')
    add('--json', help='write the rows and the header to this JSON file after every row')
    add('--n-train', type=int, help='only the first N training examples (smoke tests)')
    add('--seed-001-base-run', action='store_true',
        help="time seed 001's full base run through mu.train_ch6 instead")
    add('--epochs', type=int, default=100, help='epochs for --seed-001-base-run')
    args = p.parse_args(argv)
    keys = []  # in the order asked for, without repeats
    for m in (ALIASES.get(m.lower(), m.lower()) for m in args.models):
        if m != 'all' and m not in MODELS:
            p.error(f'unknown model {m!r}; choose from {", ".join(MODELS)} or all')
        keys += [k for k in (MODELS if m == 'all' else [m]) if k not in keys]
    args.models = keys
    if min(args.batch) < 1 or args.repeats < 1 or (args.steps is not None and args.steps < 1):
        p.error('--batch, --steps and --repeats must be positive')
    return args


def main(argv=None):
    """Run the benchmark, print the tables, return the rows (dicts)."""
    args = parse_args(argv)
    device = torch.device(args.device) if args.device else mu.try_gpu()
    gpu = device.type == 'cuda'
    if gpu and not torch.cuda.is_available():
        raise SystemExit('--device cuda asked for, but torch sees no CUDA GPU')
    if args.amp and not gpu:
        print('note: --amp only applies on CUDA; ignored on', device)
    args.seconds = args.seconds or (2.0 if gpu else 1.0)
    args.cifar_width = args.cifar_width or (32 if gpu else 16)
    args.max_steps = args.max_steps or (900 if gpu else 200)
    print(header(device, args), flush=True)
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
            if args.json:  # after every row: a run cut short still leaves what it measured
                write_rows(args.json, header(device, args), rows + batch_rows)
        print(f'\n{format_table(batch_rows, device, args.markdown)}\n')
        rows += batch_rows
    for line in target_lines(rows, device):
        print(line)
    return rows


if __name__ == '__main__':
    main()
