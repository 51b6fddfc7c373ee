"""One GPU session (issue 28) in one command: every result is written to --out the moment it exists.

    python benchmarks/gpu_session.py --device cuda --out $OUT --budget-s 420
    python benchmarks/gpu_session.py --smoke --device cpu --out /tmp/session   # every step, tiny

In this order, each step bounded so that the whole fits in --budget-s:
  a. the speed table: benchmarks/train_speed.py, batch 64 and 256, classic loop against the fast
     path, with a bf16 path and channels_last (nets with convolutions); then a compiled fast path
     for a few models, while its share of the budget lasts;
  b. seed 001's base run (02 `base`, seed 0) alone on the device through `python -m audit
     --train-only --retrain`, set against the report's 719.6 s and 21,217.8 examples/s;
  c. a short probe of how many training processes share the device best, then a queue of audit
     runs, that many at once: 02 `high lr cuda fp32` and `high lr cuda tf32` seeds 0-7
     (alternating, so a cut leaves both rows about as far), then 02 `base` seeds 1-2 and 01 and 04
     `base` seeds 0-2 re-trained; a run starts only when its estimate ends before the budget does;
  d. one full-size epoch of 03 and of 05 (benchmarks/full_size_epoch.py) on stand-in data.

Files in --out (at most 8, none in a sub-folder, as the device tool returns them):
  session.json    the machine, every step's status and seconds, the base run against the report,
                  the probe and the number of processes chosen, every queued run's outcome
  speed.json      the speed table's rows (train_speed.py's, by invocation)
  full_size.json  the full-size epochs of 03 and 05
  runs.tar.gz     every stored run that is new or changed, paths relative to the runs folder:
                  `tar -xzf runs.tar.gz -C reports/runs` (an old run a --retrain replaced comes
                  as the audit's own `*.earlier-*.json.keep` beside the new one)
  joblogs.tar.gz  the output of every process the session started
The stored runs are trained in a copy of reports/runs (--runs-from), never in the tree itself.
Where the tree has no .git (a device machine gets the files only), the audit records no commit:
--commit names it here, in session.json, and --unpack writes it into the runs that lack one.

Back on the development machine, with the returned files in FOLDER:
    python benchmarks/gpu_session.py --unpack FOLDER
extracts runs.tar.gz into reports/runs and writes benchmarks/results/full_size_epoch_<03|05>_cuda.json
and benchmarks/results/gpu_session_speed.json.
"""
import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # audit/ is not installed: it is found in the checkout

import torch  # noqa: E402

import my_utils as mu  # noqa: E402
from audit import provenance  # noqa: E402
from audit.store import slug  # noqa: E402

REPORTED_BASE = {'wall_s': 719.6, 'examples_per_sec': 21217.8, 'device': 'cuda:0'}
NOTEBOOKS = {'01': '01_fashion_mixer_conv_stem', '02': '02_fashion_two_mlp_unfold',
             '04': '04_fashion_patch_mlp_tuning'}
# A run's expected length relative to 02's base run (93,800 steps at batch 64): 01's base is 7,050
# larger steps (batch 256, conv stem), 04's 23,400 Adam steps at batch 32. Until a run of the
# variant has finished here these estimates decide what may start; they err on the long side.
RELATIVE_LENGTH = {'01': 0.5, '02': 1.0, '04': 0.6}
LONGER = {'high lr after base': 2.0}  # rows that train two runs in one (the base run, then lr 0.9)
SPEED_SHARES = (0.42, 0.33, 0.25)  # step a's time for batch 64, batch 256, compiled; unused time carries over


@dataclasses.dataclass
class Job:
    """One audit run: (variant, row, seed); retrain: train it again though it is stored."""
    variant: str
    row: str
    seed: int
    retrain: bool = False

    @property
    def name(self):
        return f'{self.variant}_{slug(self.row)}__seed{self.seed}'

    def argv(self, device, runs, quick):
        return ([sys.executable, '-m', 'audit', self.variant, '--rows', self.row, '--seed',
                 str(self.seed), '--device', device, '--train-only', '--runs', str(runs)]
                + ['--retrain'] * self.retrain + ['--quick'] * quick)

    def stored(self, runs, quick):
        folder = NOTEBOOKS[self.variant] + ('.quick' if quick else '')
        return Path(runs) / folder / f'{slug(self.row)}__seed{self.seed}.json'


def queue(cuda, smoke):
    """Step c's runs in the order they start: the 16 lr 0.9 runs first, float32 and TF32 in turn."""
    # The cuda rows train only on CUDA; elsewhere (the smoke run) their CPU counterparts stand in.
    fp32, tf32 = ('high lr cuda fp32', 'high lr cuda tf32') if cuda else ('high lr', 'high lr tf32')
    jobs = [Job('02', row, seed, retrain=smoke) for seed in range(8) for row in (fp32, tf32)]
    jobs += [Job('02', 'base', seed, retrain=True) for seed in (1, 2)]
    jobs += [Job(v, 'base', seed, retrain=True) for v in ('01', '04') for seed in range(3)]
    if smoke:
        return jobs[:2] + jobs[16:17]
    # Then the seeds the audit added where a verdict hinges on the noise of a few runs (audit/variants/v02.py).
    jobs += [Job('02', 'plain lr 0.15', seed) for seed in range(3, 10)]
    jobs += [Job('02', row, seed) for seed in (8, 9) for row in ('high lr', 'high lr tf32')]
    jobs += [Job('02', 'high lr after base', seed) for seed in (3, 4)]
    return jobs


class Session:
    """The clock, the output folder and the working folder of one session."""

    def __init__(self, args):
        self.args, self.start = args, time.monotonic()
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix='gpu_session_'))
        self.runs, self.logs = self.work / 'runs', self.work / 'logs'
        self.logs.mkdir()
        if args.runs_from and Path(args.runs_from).is_dir():
            shutil.copytree(args.runs_from, self.runs)
        self.runs.mkdir(exist_ok=True)
        self.before = self._snapshot()  # what was stored: only new or changed runs go back
        self.data = {'meta': self._meta(), 'steps': {}, 'queue': []}
        self.write('session.json', self.data)

    # ------------------------------------------------------------------ time
    def elapsed(self):
        return time.monotonic() - self.start

    def left(self):
        return self.args.budget_s - self.elapsed()

    # ------------------------------------------------------------------ output
    def write(self, name, data):
        """JSON into --out through a rename: a session cut off leaves whole files only."""
        tmp = self.out / f'.{name}.tmp'
        tmp.write_text(json.dumps(data, indent=1, default=str) + '\n')
        os.replace(tmp, self.out / name)

    def save(self):
        self.write('session.json', self.data)

    def step(self, name, status, started, **extra):
        self.data['steps'][name] = {'status': status, 'seconds': round(time.monotonic() - started, 1),
                                    **extra}
        self.save()
        print(f'== step {name}: {status} after {time.monotonic() - started:.0f} s '
              f'({self.left():.0f} s of the budget left)', flush=True)

    def _snapshot(self):
        return {p.relative_to(self.runs).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
                for p in self.runs.rglob('*') if p.is_file()}

    def bundle(self):
        """Rewrite runs.tar.gz (new or changed stored runs) and joblogs.tar.gz."""
        now = self._snapshot()
        changed = sorted(k for k, v in now.items() if self.before.get(k) != v
                         and Path(k).name not in ('manifest.json', 'last_error.json'))
        for name, root, members in (('runs.tar.gz', self.runs, changed),
                                    ('joblogs.tar.gz', self.logs,
                                     sorted(p.name for p in self.logs.iterdir()))):
            tmp = self.out / f'.{name}.tmp'
            with tarfile.open(tmp, 'w:gz') as tar:
                for member in members:
                    tar.add(root / member, arcname=member)
            os.replace(tmp, self.out / name)
        return changed

    def _meta(self):
        args, cuda = self.args, torch.device(self.args.device).type == 'cuda'
        return {'started': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
                'device': args.device, 'hardware': provenance.hardware(args.device),
                'torch': torch.__version__, 'cuda': torch.version.cuda if cuda else None,
                'python': platform.python_version(), 'cpus': mu.usable_cpus(),
                'budget_s': args.budget_s, 'smoke': args.smoke,
                'commit_given': args.commit, 'commit_in_tree': provenance.commit(REPO),
                'data': os.environ.get('MY_UTILS_DATA'), 'argv': sys.argv[1:]}

    # ------------------------------------------------------------------ processes
    def env(self, threads=None):
        env = dict(os.environ, PYTHONUNBUFFERED='1',
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')])))
        if threads:
            env['OMP_NUM_THREADS'] = str(threads)
        if self.args.commit:  # for an audit that takes the commit from here when there is no .git
            env['AUDIT_COMMIT'] = self.args.commit
        return env

    def launch(self, name, argv, threads=None):
        log = open(self.logs / f'{name}.log', 'w')
        log.write(' '.join(argv) + '\n')
        log.flush()
        proc = subprocess.Popen(argv, cwd=REPO, env=self.env(threads), stdout=log,
                                stderr=subprocess.STDOUT)
        proc.log, proc.name, proc.started = log, name, time.monotonic()
        return proc

    def finish(self, proc, timeout, grace=15):
        """Wait at most `timeout` s; past it, Ctrl-C (the audit keeps a partial run aside), then kill
        after `grace` s. Returns (return code, cut short)."""
        try:
            return proc.wait(timeout=max(timeout, 0.1)), False
        except subprocess.TimeoutExpired:
            stop(proc, grace=grace)
            return proc.returncode, True
        finally:
            proc.log.close()

    def run(self, name, argv, timeout, threads=None, grace=15):
        return self.finish(self.launch(name, argv, threads), timeout, grace)


def stop(*procs, grace=15):
    """Ctrl-C every process at once, then kill those still running after `grace` seconds."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    limit = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(limit - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------- a. the speed table
def speed_table(s, budget):
    args, cuda = s.args, s.args.device.startswith('cuda')
    script = str(REPO / 'benchmarks' / 'train_speed.py')
    if args.smoke:
        common = ['--models', 'softmax', 'lenet', '--steps', '2', '--repeats', '1', '--warmup', '1',
                  '--n-train', '512']
    else:  # short runs: the table's ratios, not its decimals, are what this step is for
        common = ['--seconds', '0.2', '--repeats', '3', '--warmup', '3']
    paths = ['--channels-last'] + ['--amp-path'] * cuda
    runs = [('batch 64', ['--batch', '64', *paths]), ('batch 256', ['--batch', '256', *paths])]
    # CUDA graphs help most where a step is short: the small models, at batch 64.
    runs.append(('compiled', ['--batch', '64', '--models', '02', 'lenet', 'softmax', '--compile']
                 if cuda else None))
    result = {'invocations': {}}
    end = time.monotonic() + budget
    for i, ((name, extra), share) in enumerate(zip(runs, SPEED_SHARES)):
        if extra is None:
            result['invocations'][name] = {'status': 'skipped: compiling is timed on CUDA only'}
            s.write('speed.json', result)
            continue
        out = s.work / f'speed_{slug(name)}.json'
        argv = [sys.executable, script, '--device', args.device, '--markdown', '--json', str(out),
                *common, *extra]
        limit = (end - time.monotonic()) * share / sum(SPEED_SHARES[i:])
        rc, cut = s.run(f'speed_{slug(name)}', argv, limit, grace=3)  # its rows are written
        found = json.loads(out.read_text()) if out.exists() else {'header': None, 'rows': []}
        result['invocations'][name] = {
            'status': 'cut at its time limit' if cut else ('done' if rc == 0 else f'failed (rc {rc})'),
            'limit_s': round(limit), 'argv': argv[1:], **found}
        s.write('speed.json', result)
    return result


# ---------------------------------------------------------------------- b. the base run
def base_run(s, timeout):
    job = Job('02', 'base', 0, retrain=True)
    start = time.monotonic()
    rc, cut = s.run(job.name, job.argv(s.args.device, s.runs, s.args.smoke), timeout)
    wall = time.monotonic() - start
    record = read_run(job.stored(s.runs, s.args.smoke)) if rc == 0 else None
    result = {'job': job.name, 'rc': rc, 'cut': cut, 'process_wall_s': round(wall, 1),
              'reported': REPORTED_BASE}
    if record:
        result.update(outcome(record))
        result['report_wall_over_ours'] = round(REPORTED_BASE['wall_s'] / record['wall_s'], 2)
        result['ours_examples_over_report'] = round(
            record['examples_per_sec'] / REPORTED_BASE['examples_per_sec'], 2)
        print(f"base run: {record['wall_s']:.1f} s in training ({wall:.0f} s for the process), "
              f"{record['examples_per_sec']:,.0f} examples/s on {record.get('hardware')}; report: "
              f"{REPORTED_BASE['wall_s']} s, {REPORTED_BASE['examples_per_sec']:,} examples/s on "
              f"{REPORTED_BASE['device']} -> {result['report_wall_over_ours']}x its wall time",
              flush=True)
    return result


def read_run(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def outcome(record):
    keys = ('status', 'epochs', 'train_loss', 'train_acc', 'test_acc', 'examples_per_sec',
            'wall_s', 'device', 'hardware', 'commit', 'torch', 'data_sha256', 'fingerprint')
    return {k: record.get(k) for k in keys}


# ---------------------------------------------------------------------- c. concurrency
def probe(s, counts, window):
    """Examples/s of `k` processes training 02 at batch 64 at once, for each k in counts."""
    found = {}
    for k in counts:
        folder = s.work / f'probe{k}'
        folder.mkdir()
        argv = [sys.executable, str(Path(__file__).resolve()), '--probe-worker', str(folder),
                '--probe-k', str(k), '--probe-window', str(window), '--device', s.args.device,
                '--out', str(folder)]
        procs = [s.launch(f'probe{k}_{i}', argv, threads=max(1, s.args.cpus // k))
                 for i in range(k)]
        rates = []
        for proc in procs:
            rc, _ = s.finish(proc, 120)
            lines = (s.logs / f'{proc.name}.log').read_text().strip().splitlines()
            rates.append(json.loads(lines[-1])['examples_per_s'] if rc == 0 else None)
        found[k] = None if None in rates else round(sum(rates))
        print(f'probe: {k} process(es) at once train {found[k]} examples/s in all', flush=True)
    return found


def probe_worker(args):
    """One probing process: 02 at batch 64 on the device, timed while the others run too."""
    from audit.models import net_02
    device = torch.device(args.device)
    folder, k = Path(args.probe_worker), args.probe_k
    g = torch.Generator().manual_seed(os.getpid())
    images = torch.randint(0, 256, (4096, 1, 28, 28), dtype=torch.uint8, generator=g)
    loader = mu.DeviceLoader(images, torch.randint(0, 10, (4096,), generator=g), 64, shuffle=True,
                             device=device, drop_last=True)
    net = net_02().to(device)
    opt, loss = torch.optim.SGD(net.parameters(), lr=0.1), torch.nn.CrossEntropyLoss()

    def batches():
        while True:
            yield from loader
    it, totals = batches(), mu.EpochTotals(device)
    for _ in range(20):  # warm-up: allocations, kernels' first launches
        mu.train_step(net, *next(it), loss, opt, totals)
    totals.read()
    (folder / f'ready.{os.getpid()}').touch()
    limit = time.monotonic() + 60
    while len(list(folder.glob('ready.*'))) < k and time.monotonic() < limit:
        time.sleep(0.01)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.probe_window:
        mu.train_step(net, *next(it), loss, opt, totals)
        steps += 1
    totals.read()  # a sync: queued steps are counted where they ran
    print(json.dumps({'examples_per_s': steps * 64 / (time.perf_counter() - start)}))


def choose_procs(rates, cap):
    """The fewest processes within 10 % of the best total throughput the probe saw."""
    good = {k: r for k, r in rates.items() if r}
    if not good:
        return 1
    best = max(good.values())
    return min(min(k for k, r in good.items() if r >= 0.9 * best), cap)


def run_queue(s, jobs, procs, base_wall, rates, deadline):
    """Start each job when a slot is free and its estimate ends before `deadline`; stop any still
    running at the deadline (Ctrl-C: the audit keeps its finished epochs aside, not as a result)."""
    pending, running, done = list(jobs), [], []
    alone = rates.get(1) if rates else None
    slow = max(1.0, procs * alone / rates[procs]) if alone and rates.get(procs) else procs ** 0.5
    seen = {}  # variant -> the longest wall time of its runs here

    def kind(job):
        return job.variant, LONGER.get(job.row, 1.0)

    def estimate(job):
        if kind(job) in seen:
            return 1.1 * seen[kind(job)]
        return 1.2 * slow * RELATIVE_LENGTH[job.variant] * LONGER.get(job.row, 1.0) * base_wall

    while pending or running:
        for proc, job in list(running):
            if proc.poll() is None:
                continue
            running.remove((proc, job))
            proc.log.close()
            entry = settle(s, job, proc.returncode, time.monotonic() - proc.started, False, len(running) + 1)
            if entry['stored']:
                seen[kind(job)] = max(seen.get(kind(job), 0), entry['process_wall_s'])
            done.append(entry)
        # The first waiting job that fits (a shorter one may fit where the next does not).
        while len(running) < procs:
            job = next((j for j in pending if time.monotonic() + estimate(j) <= deadline), None)
            if job is None:
                break
            pending.remove(job)
            running.append((s.launch(job.name, job.argv(s.args.device, s.runs, s.args.smoke),
                                     threads=max(1, s.args.cpus // procs)), job))
            print(f'started {job.name} ({len(running)} running; estimate {estimate(job):.0f} s)',
                  flush=True)
        if pending and not running:  # nothing left fits
            break
        if time.monotonic() > deadline:
            stop(*(proc for proc, _ in running))
            for proc, job in running:
                proc.log.close()
                settle(s, job, proc.returncode, time.monotonic() - proc.started, True, len(running))
            running = []
            break
        time.sleep(0.5)
    s.data['not_started'] = [j.name for j in pending]
    s.save()
    return done, slow


def settle(s, job, rc, wall, cut, concurrent):
    record = read_run(job.stored(s.runs, s.args.smoke)) if rc == 0 else None
    entry = {'job': job.name, 'variant': job.variant, 'row': job.row, 'seed': job.seed,
             'retrain': job.retrain, 'rc': rc, 'cut': cut, 'process_wall_s': round(wall, 1),
             'running_at_end': concurrent, 'stored': record is not None,
             **(outcome(record) if record else {})}
    s.data['queue'].append(entry)
    s.save()
    s.bundle()
    print(f"{job.name}: {'cut' if cut else 'rc ' + str(rc)} after {wall:.0f} s"
          + (f", {record['status']}, test acc {record['test_acc']}" if record else ''), flush=True)
    return entry


# ---------------------------------------------------------------------- d. full-size epochs
def full_size(s, deadline):
    result = {}
    for key in ('03', '05'):
        out = s.work / f'full_size_{key}.json'
        argv = [sys.executable, str(REPO / 'benchmarks' / 'full_size_epoch.py'), key, '--device',
                s.args.device, '--out', str(out)]
        if s.args.smoke:
            argv += ['--tiny', '--probe', '1', '--batches', '1', '--test-batches', '1']
        rc, cut = s.run(f'full_size_{key}', argv, deadline - time.monotonic())
        result[key] = read_run(out) or {'status': 'cut at its time limit' if cut else f'failed (rc {rc})'}
        s.write('full_size.json', result)
    return result


# ---------------------------------------------------------------------- the session
def unpack(folder, repo=REPO):
    """Put a session's returned files where the repository keeps them; returns the run files."""
    folder = Path(folder)
    meta = json.loads((folder / 'session.json').read_text())['meta']
    runs, results = repo / 'reports' / 'runs', repo / 'benchmarks' / 'results'
    with tarfile.open(folder / 'runs.tar.gz') as tar:
        members = tar.getmembers()
        for m in members:  # stored runs only, each inside the runs folder
            parts = Path(m.name).parts
            if not m.isfile() or m.name.startswith('/') or '..' in parts or len(parts) != 2 \
                    or not m.name.endswith(('.json', '.json.keep')):
                raise SystemExit(f'runs.tar.gz holds {m.name!r}, which is no stored run: nothing unpacked')
        for m in members:
            record = json.load(tar.extractfile(m))
            if meta.get('commit_given') and record.get('commit') is None:
                record['commit'] = meta['commit_given']
            (runs / m.name).parent.mkdir(parents=True, exist_ok=True)
            (runs / m.name).write_text(json.dumps(record, indent=1))
    results.mkdir(parents=True, exist_ok=True)
    for key, result in (read_run(folder / 'full_size.json') or {}).items():
        if 'epoch_s' in result:  # a measured epoch, not a step that was cut or failed
            (results / f"full_size_epoch_{key}_{result['device'].split(':')[0]}.json").write_text(
                json.dumps(result, indent=1) + '\n')
    if (folder / 'speed.json').exists():
        speed = dict(read_run(folder / 'speed.json'), meta=meta)
        (results / 'gpu_session_speed.json').write_text(json.dumps(speed, indent=1) + '\n')
    print(f'unpacked {len(members)} stored run files into {runs} and the results into {results}')
    return [m.name for m in members]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cuda', help="'cuda' (default) or 'cpu' (with --smoke)")
    p.add_argument('--out', help='folder for the results (the device tool: $OUT)')
    p.add_argument('--unpack', metavar='FOLDER',
                   help="put a session's returned files into reports/runs and benchmarks/results")
    p.add_argument('--budget-s', type=float, default=420, help='seconds the session may take (420)')
    p.add_argument('--smoke', action='store_true', help='every step on tiny settings: seconds')
    p.add_argument('--procs', type=int, help='processes at once in step c (default: probed)')
    p.add_argument('--commit', help='the commit of the tree, when it travels without .git')
    p.add_argument('--runs-from', default=str(REPO / 'reports' / 'runs'),
                   help='stored runs the session starts from (copied; default reports/runs)')
    p.add_argument('--speed-s', type=float, default=100, help="step a's share of the budget (100)")
    p.add_argument('--reserve-d-s', type=float, default=60, help='seconds kept for step d (60)')
    p.add_argument('--skip', nargs='*', default=[], choices=['speed', 'base', 'queue', 'full'],
                   help='steps to leave out')
    p.add_argument('--probe-worker', help=argparse.SUPPRESS)
    p.add_argument('--probe-k', type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument('--probe-window', type=float, default=3.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.unpack:
        return args
    if not args.out:
        p.error('--out is required (or --unpack FOLDER)')
    if args.budget_s <= 0 or args.speed_s < 0 or args.reserve_d_s < 0 or (args.procs or 1) < 1:
        p.error('--budget-s must be positive, --speed-s and --reserve-d-s not negative, --procs >= 1')
    if torch.device(args.device).type == 'cuda' and not torch.cuda.is_available():
        p.error('--device cuda asked for, but torch sees no CUDA GPU')
    if torch.device(args.device).type != 'cuda' and not args.smoke and not args.probe_worker:
        p.error('a full session is meant for CUDA; on another device use --smoke')
    args.cpus = mu.usable_cpus()
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.unpack:
        unpack(args.unpack)
        return 0
    if args.probe_worker:
        return probe_worker(args)
    s = Session(args)
    print(f"# gpu session on {s.data['meta']['hardware']} ({args.device}), torch {torch.__version__}, "
          f"{args.cpus} CPUs, budget {args.budget_s:.0f} s{' (smoke)' if args.smoke else ''}; "
          f"work folder {s.work}", flush=True)
    cuda = torch.device(args.device).type == 'cuda'
    smoke = args.smoke

    started = time.monotonic()
    if 'speed' in args.skip:
        s.step('a_speed', 'skipped', started)
    else:
        result = speed_table(s, min(args.speed_s, 0.3 * args.budget_s))
        s.step('a_speed', 'done', started,
               invocations={k: v['status'] for k, v in result['invocations'].items()})

    started = time.monotonic()
    base_wall = None
    if 'base' in args.skip:
        s.step('b_base_run', 'skipped', started)
    else:
        s.data['base_run'] = result = base_run(s, s.left() - args.reserve_d_s)
        s.bundle()
        base_wall = result['process_wall_s'] if result['rc'] == 0 else None
        s.step('b_base_run', 'done' if result['rc'] == 0 else 'failed', started)

    started = time.monotonic()
    if 'queue' in args.skip:
        s.step('c_queue', 'skipped', started)
    else:
        jobs = queue(cuda, smoke)
        rates, base_wall_or_guess = {}, base_wall or (10 if smoke else 150)
        # The probe (about 25 s on the device) only where the shortest run could still follow it.
        room = s.left() - args.reserve_d_s - (5 if smoke else 25)
        worth = room > min(RELATIVE_LENGTH.values()) * base_wall_or_guess
        if args.procs is None and worth:
            counts = (1, 2) if smoke else (1, 8, 16)
            rates = probe(s, [k for k in counts if k <= len(jobs)], 0.5 if smoke else 2.0)
        procs = args.procs or choose_procs(rates, min(args.cpus, len(jobs)))
        s.data['concurrency'] = {'probe_examples_per_s': rates, 'procs': procs,
                                 'probed': bool(rates)}
        s.save()
        print(f'queue: {len(jobs)} runs, {procs} at once', flush=True)
        deadline = time.monotonic() + s.left() - args.reserve_d_s
        done, slow = run_queue(s, jobs, procs, base_wall_or_guess, rates, deadline)
        s.data['concurrency'].update(gain_over_alone(done, base_wall, procs), assumed_slowdown=round(slow, 2))
        s.step('c_queue', 'done', started, finished=sum(e['stored'] for e in done),
               not_started=len(s.data['not_started']))

    started = time.monotonic()
    if 'full' in args.skip:
        s.step('d_full_size', 'skipped', started)
    else:
        full_size(s, time.monotonic() + max(s.left(), 30))  # d always gets its 30 s at least
        s.step('d_full_size', 'done', started)
    changed = s.bundle()
    s.data['returned_runs'] = changed
    s.data['total_s'] = round(s.elapsed(), 1)
    s.save()
    print(f'== session done in {s.elapsed():.0f} s: {len(changed)} stored files in runs.tar.gz', flush=True)
    shutil.rmtree(s.work, ignore_errors=True)
    return 0


def gain_over_alone(done, base_wall, procs):
    """How much the 02 runs, `procs` at a time, gained over one after another at the base run's
    pace: the throughput gain is procs / slowdown while the slots were full."""
    runs = [e for e in done if e['variant'] == '02' and e['stored']]
    if not runs or not base_wall:
        return {}
    mean = sum(e['process_wall_s'] for e in runs) / len(runs)
    return {'runs_02': len(runs), 'mean_wall_s_02': round(mean, 1),
            'slowdown_per_run': round(mean / base_wall, 2),
            'throughput_over_alone': round(procs * base_wall / mean, 2)}


if __name__ == '__main__':
    sys.exit(main())
