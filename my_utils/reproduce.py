"""Reproduce a coursework notebook's rows and write its report.

    python -m my_utils.reproduce 02 --seeds 3      # one variant, by number or name
    python -m my_utils.reproduce all               # every notebook in notebooks/
    python -m my_utils.reproduce 02 --report-only  # rewrite reports/02_*.md from its results file
    python -m my_utils.reproduce 02 --stored-only  # re-execute the notebook from the stored runs

It executes the notebook itself (the code the student reads) in full mode, with the results
file in reports/: every finished (row, seed) is saved as soon as it ends, so a stopped run
picks up where it left off. Then it writes reports/<name>.md, the base run's curves and the
executed notebook beside them.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import nbformat

from .report import error_text, record_error, update_readme, write_report

REPO = Path(__file__).resolve().parent.parent


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
            raise SystemExit(f'{name!r} names no single notebook; choose from: all, {listing}')
        chosen += matches
    return chosen


def execute(notebook, reports, seeds, quick, stored_only=False):
    """Run the notebook top to bottom in a fresh kernel; returns (executed notebook, error or None).

    stored_only=True trains nothing: the notebook shows the stored runs, and the rest as not run."""
    from nbclient.exceptions import CellExecutionError

    os.environ['MY_UTILS_QUICK'] = '1' if quick else '0'
    os.environ['MY_UTILS_STORED_ONLY'] = '1' if stored_only else '0'
    os.environ['MY_UTILS_SEEDS'] = str(seeds)
    os.environ['MY_UTILS_RESULTS'] = str(reports)
    os.environ['MY_UTILS_PROGRESS'] = '1'  # train_ch6 prints each epoch to this terminal
    nb = nbformat.read(notebook, as_version=4)
    client = _progress_client(nb, notebook.parent)
    try:
        client.execute()
        return nb, None
    except CellExecutionError as err:
        return nb, err


def _progress_client(nb, workdir):
    """nbclient's NotebookClient, echoing each cell's first line and printed text as it runs."""
    from nbclient import NotebookClient

    class ProgressClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            if msg['msg_type'] == 'stream':
                sys.stdout.write(msg['content']['text'])
                sys.stdout.flush()
            return super().output(outs, msg, display_id, cell_index)

    code_cells = [i for i, cell in enumerate(nb.cells) if cell.cell_type == 'code']
    start = time.time()

    def announce(cell, cell_index, **_):
        if cell.cell_type != 'code':
            return
        first = next((line for line in cell.source.splitlines()
                      if line.strip() and not line.startswith('#')), '')
        number = code_cells.index(cell_index) + 1
        print(f'[{number}/{len(code_cells)} {time.time() - start:6.0f} s] {first[:70]}', flush=True)

    # capture_fd_output off: the kernel's own stderr (train_ch6's epoch lines) then reaches this
    # terminal only, instead of being copied into the notebook's outputs as well.
    return ProgressClient(nb, timeout=None, kernel_name='python3', on_cell_start=announce,
                          extra_arguments=['--IPKernelApp.capture_fd_output=False'],
                          resources={'metadata': {'path': str(workdir)}})


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m my_utils.reproduce', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('notebooks', nargs='+', help="'all', or numbers/names such as 02")
    parser.add_argument('--seeds', type=int, default=None,
                        help='seeds for each base run (default 3; 1 with --quick)')
    parser.add_argument('--quick', action='store_true',
                        help='quick mode (small subset, 1 epoch): checks the pipeline, measures nothing')
    parser.add_argument('--report-only', action='store_true',
                        help='only rewrite the report from the stored results')
    parser.add_argument('--stored-only', action='store_true',
                        help='execute the notebook (and write its executed copy and report) from the '
                             'stored runs, training nothing: runs not stored yet show as not run')
    parser.add_argument('--reports', type=Path, default=REPO / 'reports', help='output folder')
    parser.add_argument('--notebook-dir', type=Path, default=REPO / 'notebooks')
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    if args.seeds < 1:
        parser.error('--seeds must be at least 1')

    args.reports.mkdir(parents=True, exist_ok=True)
    failed = False
    for notebook in find_notebooks(args.notebooks, args.notebook_dir):
        error = None
        if not args.report_only:
            what = 'from the stored runs only' if args.stored_only else 'finished runs are kept in'
            print(f'== {notebook.stem}: executing in {"quick" if args.quick else "full"} mode, '
                  f'{args.seeds} seed(s); {what} {args.reports}', flush=True)
            start = time.time()
            executed, error = execute(notebook, args.reports.resolve(), args.seeds, args.quick,
                                      stored_only=args.stored_only)
            stem = f'{notebook.stem}.quick' if args.quick else notebook.stem
            nbformat.write(executed, args.reports / f'{stem}.ipynb')
            record_error(args.reports, stem, error)
            print(f'== {notebook.stem}: {"stopped by an error" if error else "done"} '
                  f'after {time.time() - start:.0f} s', flush=True)
        command = (f'python -m my_utils.reproduce {notebook.stem[:2]} --seeds {args.seeds}'
                   + (' --quick' if args.quick else ''))
        path = write_report(notebook.stem, args.reports, command, error=error, quick=args.quick)
        print(f'== report: {path}', flush=True)
        if error is not None:
            print(f'   {error_text(error)}', file=sys.stderr)
            failed = True
    readme = args.reports.resolve().parent / 'README.md'
    if not args.quick and update_readme(readme, args.reports):
        print(f'== results table updated in {readme}', flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
