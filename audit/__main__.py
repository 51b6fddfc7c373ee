"""The audit: train every row of a coursework report on its seeds, store each run, write reports/.

    python -m audit 02                       # every missing run of 02 (3 seeds a row), then its report
    python -m audit 02 --rows base "high lr" # only these rows
    python -m audit 02 --rows base --seed 4  # one seed of one row
    python -m audit all --stored-only        # rebuild executed copies and reports, training nothing
    python -m audit all --report-only        # rewrite the reports and tables only
    python -m audit 02 --device cuda --train-only   # on a GPU machine: store runs, write nothing else
    python -m audit check                    # the marker's check

Run it from the checkout: it finds reports/ from the current folder upward. A run is stored the
moment it ends; Ctrl-C stops with one line, writes the reports from what is stored, exits 130.
"""
import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

from .settings import Settings


@dataclasses.dataclass
class Command:
    """Everything the command was asked, in one place."""
    variants: list
    repo: Path
    settings: Settings
    report_only: bool = False
    train_only: bool = False

    @property
    def reports(self):
        """Where reports go: beside the runs folder (reports/ for reports/runs)."""
        return Path(self.settings.runs).parent


def find_repo(start):
    """The checkout holding audit/ and reports/: `start` or a folder above it."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / 'audit').is_dir() and (folder / 'reports').is_dir():
            return folder
    raise SystemExit(f'no audit/ and reports/ folders in {start} or above it: run this command '
                     'inside a checkout of the repository (or pass --repo)')


def parse(argv):
    from . import variants
    parser = argparse.ArgumentParser(prog='python -m audit', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('variants', nargs='+', help="'all', 'check', or numbers such as 02")
    parser.add_argument('--seeds', type=int, default=3, help='seeds a row (default 3; rows may declare more)')
    parser.add_argument('--seed', type=int, default=None, help='train only this seed of the chosen rows')
    parser.add_argument('--rows', nargs='+', default=None, help='train only these rows')
    parser.add_argument('--quick', action='store_true', help='a subset and 1 epoch: checks the pipeline')
    parser.add_argument('--stored-only', action='store_true', help='train nothing: show the stored runs')
    parser.add_argument('--report-only', action='store_true', help='only rewrite the reports and tables')
    parser.add_argument('--train-only', action='store_true',
                        help='store runs, write no report (a machine without the notebook tools)')
    parser.add_argument('--retrain', action='store_true',
                        help='train stored runs again; each old run is kept beside the new one')
    parser.add_argument('--device', default=None, help="'cpu', 'cuda', ... (default: a GPU if any)")
    parser.add_argument('--data', default=None, help='data root (default: $MY_UTILS_DATA, else the cache)')
    parser.add_argument('--runs', default=None, help='folder of stored runs (default: reports/runs)')
    parser.add_argument('--repo', default='.', help='the checkout (default: found from here)')
    args = parser.parse_args(argv)
    if args.seeds < 1 or (args.seed is not None and args.seed < 0):
        parser.error('--seeds must be at least 1 and --seed at least 0')
    names = args.variants
    if names not in (['all'], ['check']):
        for name in names:
            try:
                variants.load(name)
            except KeyError as err:
                parser.error(err.args[0])
    repo = find_repo(args.repo)
    data = args.data or os.environ.get('MY_UTILS_DATA')
    from my_utils.datasets import data_root
    data = Path(data).expanduser().resolve() if data else data_root()  # relative: the caller's folder
    runs = Path(args.runs).resolve() if args.runs else repo / 'reports' / 'runs'
    settings = Settings(quick=args.quick, seeds=args.seeds, seed=args.seed, rows=args.rows,
                        stored_only=args.stored_only, retrain=args.retrain, runs=str(runs),
                        repo=str(repo), data=str(data), device=args.device)
    return Command(names, repo, settings, args.report_only, args.train_only)


def preflight(cmd):
    """Refuse before any training when the results could not be written or the data is not there."""
    runs = Path(cmd.settings.runs)
    try:
        runs.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=runs):
            pass
    except OSError as err:
        raise SystemExit(f'cannot write to {runs} ({err.strerror}): make it writable, or run from a '
                         'checkout you can write to; nothing was trained') from None
    if not (cmd.report_only or cmd.settings.stored_only) and not Path(cmd.settings.data).is_dir():
        raise SystemExit(f'the data folder {cmd.settings.data} does not exist: pass --data or set '
                         'MY_UTILS_DATA to the folder that holds FashionMNIST/ (KMNIST/, '
                         'cifar-10-batches-py/); nothing was trained')


def main(argv=None):
    cmd = parse(argv)
    from . import variants
    if cmd.variants == ['check']:
        from .check import check
        return check(cmd)
    modules = [variants.load(key) for key in (variants.MODULES if cmd.variants == ['all'] else cmd.variants)]
    preflight(cmd)
    from .train import train_variant
    failed = False
    try:
        for module in modules:
            if not cmd.report_only:
                start = time.time()
                print(f'== {module.NAME}: {"quick" if cmd.settings.quick else "full"} mode'
                      f'{", stored runs only" if cmd.settings.stored_only else ""}', flush=True)
                error = train_variant(module, cmd.settings)
                failed |= error is not None
                print(f'== {module.NAME}: {"stopped: " + error if error else "done"} after '
                      f'{time.time() - start:.0f} s', flush=True)
            if not cmd.train_only:
                write_outputs(cmd, module.NAME, copy=not cmd.report_only)
    except KeyboardInterrupt:
        print('\ninterrupted: every finished run is stored; writing the reports from them', flush=True)
        if not cmd.train_only:
            for module in modules:
                write_outputs(cmd, module.NAME, copy=False)
        return 130
    if not cmd.train_only and not cmd.settings.quick and cmd.reports == cmd.repo / 'reports':
        from .report import update_tables
        update_tables(cmd.repo)
    return 1 if failed else 0


def write_outputs(cmd, name, copy):
    """The executed audit copy (from stored runs only) and the report of one variant."""
    from .report import write_report
    if cmd.settings.quick:
        return
    if copy:
        from .execute import execute_copy
        error = execute_copy(name, cmd.repo, cmd.reports, cmd.settings)
        print(f'== executed copy: reports/{name}.ipynb' + (f' (stopped: {error})' if error else ''),
              flush=True)
    print(f'== report: {write_report(name, cmd.reports)}', flush=True)


if __name__ == '__main__':
    sys.exit(main())
