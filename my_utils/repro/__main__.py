"""The reproduction command: execute a coursework notebook in full mode, store every run, write the report.

    python -m my_utils.repro 02                 # every row of 02 on 3 seeds; resumes where it stopped
    python -m my_utils.repro 02 --rows base "high lr" --seeds 5
    python -m my_utils.repro all --stored-only  # rebuild the executed copies and reports, training nothing
    python -m my_utils.repro all --report-only  # rewrite the reports and the README table only
    python -m my_utils.repro check              # the marker's check (see the README)

Run it inside the checkout: it finds notebooks/ and reports/ from the current folder upward.
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
    notebooks: list
    repo: Path
    settings: Settings
    report_only: bool = False

    @property
    def reports(self):
        return self.repo / 'reports'


def find_repo(start):
    """The checkout holding notebooks/ and reports/: `start` or a folder above it."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / 'notebooks').is_dir() and (folder / 'reports').is_dir():
            return folder
    raise SystemExit(f'no notebooks/ and reports/ folders in {start} or above it: run this '
                     'command inside a checkout of the repository (or pass --repo)')


def find_notebooks(names, notebook_dir):
    """Notebook paths for names such as '02', '02_fashion_two_mlp_unfold' or 'all'."""
    available = sorted(notebook_dir.glob('[0-9][0-9]_*.ipynb'))
    if not available:
        raise SystemExit(f'no notebooks found in {notebook_dir}')
    if names == ['all']:
        return available
    chosen = []
    for name in names:
        matches = [p for p in available if p.stem == name or p.stem.startswith(f'{name}_')]
        if len(matches) != 1:
            listing = ', '.join(p.stem for p in available)
            raise SystemExit(f'{name!r} names no notebook; choose from: all, {listing}')
        chosen += matches
    return chosen


def parse(argv):
    parser = argparse.ArgumentParser(prog='python -m my_utils.repro', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('notebooks', nargs='+', help="'all', 'check', or numbers/names such as 02")
    parser.add_argument('--seeds', type=int, default=3, help='seeds a row (default 3)')
    parser.add_argument('--rows', nargs='+', default=None, help='train only these rows')
    parser.add_argument('--quick', action='store_true', help='a subset and 1 epoch: checks the pipeline')
    parser.add_argument('--stored-only', action='store_true', help='train nothing: show the stored runs')
    parser.add_argument('--report-only', action='store_true', help='only rewrite the reports')
    parser.add_argument('--share', action='store_true',
                        help='another process works on the same notebook: mark runs in progress')
    parser.add_argument('--data', default=None, help='data root (default: $MY_UTILS_DATA, else the cache)')
    parser.add_argument('--repo', default='.', help='the checkout (default: found from here)')
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error('--seeds must be at least 1')
    repo = find_repo(args.repo)
    data = args.data or os.environ.get('MY_UTILS_DATA')
    from my_utils.datasets import data_root
    data = Path(data).expanduser().resolve() if data else data_root()  # relative: the caller's folder
    settings = Settings(quick=args.quick, seeds=args.seeds, rows=args.rows,
                        stored_only=args.stored_only, runs=str(repo / 'reports' / 'runs'),
                        share=args.share, repo=str(repo), data=str(data))
    return Command(args.notebooks, repo, settings, args.report_only)


def preflight(cmd):
    """Refuse before any training when the results could not be written or the data is not there."""
    reports = cmd.reports
    try:
        (reports / 'runs').mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=reports / 'runs'):
            pass
    except OSError as err:
        raise SystemExit(f'cannot write to {reports} ({err.strerror}): make it writable, or run '
                         'from a checkout you can write to; nothing was trained') from None
    if not (cmd.report_only or cmd.settings.stored_only) and not Path(cmd.settings.data).is_dir():
        raise SystemExit(f'the data folder {cmd.settings.data} does not exist: pass --data or set '
                         'MY_UTILS_DATA to the folder that holds FashionMNIST/ (KMNIST/, '
                         'cifar-10-batches-py/); nothing was trained')


def main(argv=None):
    cmd = parse(argv)
    if cmd.notebooks == ['check']:
        from .check import check
        return check(cmd)
    notebooks = find_notebooks(cmd.notebooks, cmd.repo / 'notebooks')
    preflight(cmd)
    from .execute import execute_notebook
    from .report import record_error, update_readme, write_report
    failed = False
    try:
        for notebook in notebooks:
            stem = notebook.stem + ('.quick' if cmd.settings.quick else '')
            if not cmd.report_only:
                start = time.time()
                print(f'== {notebook.stem}: {"quick" if cmd.settings.quick else "full"} mode'
                      f'{", stored runs only" if cmd.settings.stored_only else ""}', flush=True)
                error = execute_notebook(notebook, cmd.reports / f'{stem}.ipynb', cmd.settings)
                record_error(cmd.reports, stem, error)
                failed |= error is not None
                print(f'== {notebook.stem}: {"stopped: " + str(error) if error else "done"} '
                      f'after {time.time() - start:.0f} s', flush=True)
            print(f'== report: {write_report(stem, cmd.reports, _command(stem))}', flush=True)
    except KeyboardInterrupt:
        print('\ninterrupted: every finished run is stored; writing the reports from them', flush=True)
        for notebook in notebooks:
            stem = notebook.stem + ('.quick' if cmd.settings.quick else '')
            write_report(stem, cmd.reports, _command(stem))
        return 130
    if not cmd.settings.quick:
        names = [p.stem for p in find_notebooks(['all'], cmd.repo / 'notebooks')]
        update_readme(cmd.repo / 'README.md', cmd.reports, names)
    return 1 if failed else 0


def _command(stem):
    return f'python -m my_utils.repro {stem[:2]}' + (' --quick' if stem.endswith('.quick') else '')


if __name__ == '__main__':
    sys.exit(main())
