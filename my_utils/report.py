"""Write reports/<name>.md from a notebook's results file: reported beside ours, per row and per run."""
import datetime
import json
from pathlib import Path

from matplotlib.figure import Figure

from .experiments import row_lines, update_results


def _load(path):
    return json.loads(path.read_text()) if path.exists() else None


def write_report(name, reports, command, error=None, quick=False):
    """Write reports/<name>.md (and the base run's curves); returns the report's path.

    quick=True reports the quick-mode results (<name>.quick.json) into <name>.quick.md instead.
    A full report lists the rows even before any full run, taking them from a quick run's file.
    """
    reports = Path(reports)
    stem = f'{name}.quick' if quick else name
    own = _load(reports / f'{stem}.json')
    if error is None and own:
        error = own.get('last_error')  # --report-only keeps why the last run stopped
    other = _load(reports / f'{name}.quick.json') if not quick else None
    runs = own['runs'] if own else []
    rows = (own or {}).get('rows') or (other or {}).get('rows') or []
    by_row = {}
    for run in runs:
        by_row.setdefault(run['row'], []).append(run)

    executed = (f'its executed copy is `{stem}.ipynb` here' if (reports / f'{stem}.ipynb').exists()
                else 'no run has reached its end yet, so there is no executed copy here')
    lines = [f'# {name}: reported beside reproduced', '',
             f'Written {datetime.date.today().isoformat()} by `{command}` from `{stem}.json`, the runs '
             f'stored by the notebook `notebooks/{name}.ipynb` ({executed}).', '']
    if quick:
        lines += ['**Quick mode**: a small subset and one epoch per row. This checks that every row runs; '
                  'its numbers say nothing about the report.', '']
    pending = _pending_reason(command, error, runs)
    if error is not None:
        lines += ['**The last full run stopped with an error**, so rows below without a number were not run:', '',
                  '```', error_text(error), '```', '']
    if not rows:
        lines += ['No reported rows are stored yet: the notebook has not reached its table in a run.', '']
    else:
        lines += ['| row | set-up | reported | ours: mean ± std (min..max, n) | verdict |',
                  '| --- | --- | --- | --- | --- |']
        records_of = lambda row: sorted(by_row.get(row, []), key=lambda r: r['seed'])  # noqa: E731
        for line in row_lines(rows, records_of, pending=pending, judge=not quick):
            lines.append('| ' + ' | '.join(line) + ' |')
        lines.append('')
        lines.append('Verdict rule (SPEC): reproduced when the mean over the seeds is within 1.5 points of the '
                     'reported value, or the reported value lies inside our min..max; a reported failure is '
                     'reproduced when the run fails the same way.')
        lines.append('')

    figure = _plot_base(by_row.get('base', []), reports / f'{stem}_base.png')
    if figure:
        lines += ['## Base run: training curves', '', f'![base run, every seed]({figure.name})', '']

    lines += ['## Every run', '',
              '| row | seed | status | epochs | train loss | train acc | test acc | best test acc (epoch) '
              '| device | torch | wall time |',
              '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for run in sorted(runs, key=lambda r: (r['row'], r['seed'])):
        lines.append(f"| {run['row']} | {run['seed']} | {run['status']} | {run['epochs']} | "
                     f"{_num(run.get('train_loss'))} | {_num(run.get('train_acc'))} | {_num(run.get('test_acc'))} | "
                     f"{_num(run.get('best_test_acc'))} ({run.get('best_epoch')}) | {run['device']} | "
                     f"{run['torch']} | {run['wall_s']:.0f} s |")
    if not runs:
        lines.append('| (none yet) | | | | | | | | | | |')
    steps = sorted({r['row'] for r in runs} - {row['row'] for row in rows})
    if rows and steps:
        lines += ['', f"{', '.join(f'`{s}`' for s in steps)}: not a row of the table above but a step "
                  "toward one (see the notebook); its test columns hold what that step evaluates on "
                  "(a validation split, for a validation run)."]
    total = sum(r['wall_s'] for r in runs)
    lines += ['', f'Total training time of the stored runs: {total / 60:.1f} min.', '']
    path = reports / f'{stem}.md'
    path.write_text('\n'.join(lines))
    return path


def _pending_reason(command, error, runs):
    """Why a row has no number yet, and how to get one, in one line."""
    if error is not None and error_text(error).startswith('DataError'):
        return f'the data set is not on this machine (the error above); run `{command}` where it is'
    if error is not None:
        return f'the full run stopped before this row (the error above); run `{command}` where it can run'
    finished = [r for r in runs if r['status'] == 'finished' and not r.get('quick')]
    if not finished:
        return f'run `{command}`'
    minutes = sum(r['wall_s'] for r in finished) / len(finished) / 60
    devices = ', '.join(sorted({r['device'] for r in finished}))
    return (f'the reproduction has not reached this row yet (its stored runs took about '
            f'{minutes:.0f} min each on {devices}); run `{command}`, which resumes')


def _readme_pending(stopped, command):
    """Why the README row has no number: the data set missing here, another error, or not run."""
    # datasets.py's DataError reads '<data set> could not be loaded from ...'; the report's own
    # wording (_pending_reason) points at the error printed above it, which the README lacks.
    if stopped and stopped.startswith('DataError: ') and ' could not be loaded' in stopped:
        data_set = stopped[len('DataError: '):].split(' could not be loaded')[0]
        return f'no {data_set} here; run `{command}` where it is'
    if stopped:
        return f'the full run stopped with {stopped.split(":")[0]}; see the report'
    return f'run `{command}`'


README_START = '<!-- results: written by python -m my_utils.reproduce; do not edit by hand -->'
README_END = '<!-- /results -->'


def results_table(reports):
    """The README's table: each variant's base run, reported beside ours, from the results files."""
    reports = Path(reports)
    lines = ['| variant | base run: reported | ours: mean ± std (min..max, n) | verdict | device | report |',
             '| --- | --- | --- | --- | --- | --- |']
    for path in sorted(reports.glob('[0-9][0-9]_*.md')):
        if path.stem.endswith('.quick'):
            continue
        name = path.stem
        own = _load(reports / f'{name}.json') or {}
        rows = own.get('rows') or (_load(reports / f'{name}.quick.json') or {}).get('rows') or []
        base = [row for row in rows if row['row'] == 'base'][:1]
        runs = sorted((r for r in own.get('runs', []) if r['row'] == 'base'), key=lambda r: r['seed'])
        if not base:
            lines.append(f'| {name} | - | - | no rows stored yet | - | [{path.name}]({path.name}) |')
            continue
        pending = _readme_pending(own.get('last_error'), f'python -m my_utils.reproduce {name[:2]}')
        _, _, reported, ours, verdict_text = next(row_lines(base, lambda row: runs, pending=pending))
        devices = ', '.join(sorted({r['device'] for r in runs})) or '-'
        lines.append(f'| {name} | {reported} | {ours} | {verdict_text} | {devices} | '
                     f'[{path.name}](reports/{path.name}) |')
    return '\n'.join(lines)


def update_readme(readme, reports):
    """Replace the README's results table (between its markers) with one made from the results
    files; returns False, changing nothing, when the README has no such markers."""
    readme = Path(readme)
    text = readme.read_text() if readme.exists() else ''
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    table = results_table(reports)
    readme.write_text(text[:start + len(README_START)] + '\n' + table + '\n' + text[end:])
    return True


def _num(value):
    return '-' if value is None else f'{value:.4f}'


def record_error(reports, stem, error):
    """Keep (or clear, with error=None) why the last run of a notebook stopped, in its results file."""
    def change(results):
        results.setdefault('notebook', stem)
        results.setdefault('rows', [])
        results.setdefault('runs', [])
        if error is None:
            results.pop('last_error', None)
        else:
            results['last_error'] = error_text(error)

    update_results(Path(reports) / f'{stem}.json', change)


def error_text(error):
    """'Name: message' of a notebook cell's error (nbclient's CellExecutionError), else str()."""
    if isinstance(error, str):
        return error
    name, value = getattr(error, 'ename', None), getattr(error, 'evalue', None)
    if name:
        return f'{name}: {value}'
    text = str(error).strip().splitlines()
    return text[-1] if text else repr(error)


def _plot_base(runs, path):
    """Train loss, train acc and test acc per epoch for every seed of the base run."""
    if not runs:
        return None
    figure = Figure(figsize=(9, 2.8), dpi=100)
    axes = figure.subplots(1, 3)
    for run in sorted(runs, key=lambda r: r['seed']):
        history = run['history']
        epochs = range(1, len(history['train_loss']) + 1)
        for ax, key in zip(axes, ('train_loss', 'train_acc', 'test_acc')):
            ax.plot(epochs, history[key], label=f"seed {run['seed']}")
    for ax, title in zip(axes, ('train loss', 'train acc', 'test acc')):
        ax.set_title(title)
        ax.set_xlabel('epoch')
        ax.grid(True)
    axes[-1].legend()
    figure.tight_layout()
    figure.savefig(path)
    return path


__all__ = []
