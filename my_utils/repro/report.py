"""reports/<name>.md and the README's results table, written from the stored runs alone."""
import datetime
import json
from pathlib import Path

from matplotlib.figure import Figure

from .lab import Lab, is_current, short_rows_markdown, table_markdown
from .store import write_json
from .verdict import LAST_EPOCHS, SPREAD_SEEDS

README_START = '<!-- results: written by python -m my_utils.repro; do not edit by hand -->'
README_END = '<!-- /results -->'


def runs_folder(reports, name):
    return Path(reports) / 'runs' / name


def record_error(reports, name, error):
    """Keep (or clear, with None) why the last execution of a notebook stopped."""
    path = runs_folder(reports, name) / 'last_error.json'
    if error is None:
        path.unlink(missing_ok=True)
    else:
        write_json(path, {'error': error_text(error),
                          'date': datetime.datetime.now().isoformat(timespec='seconds')})


def last_error(reports, name):
    path = runs_folder(reports, name) / 'last_error.json'
    return json.loads(path.read_text())['error'] if path.exists() else None


def error_text(error):
    """'Name: message' of a notebook cell's error (nbclient's CellExecutionError), else str()."""
    if isinstance(error, str):
        return error
    name, value = getattr(error, 'ename', None), getattr(error, 'evalue', None)
    if name:
        return f'{name}: {value}'
    text = str(error).strip().splitlines()
    return text[-1] if text else repr(error)


def run_dates(records):
    dates = sorted(r['date'][:10] for r in records)
    return f'{dates[0]} to {dates[-1]}' if dates and dates[0] != dates[-1] else (dates[0] if dates else '-')


def write_report(name, reports, command):
    """Write reports/<name>.md (and the base run's curves) from the stored runs; returns its path."""
    reports = Path(reports)
    lab = Lab.from_store(name, runs_folder(reports, name))
    stored = lab.store.records()
    error = last_error(reports, name)
    copy = reports / f'{name}.ipynb'
    lines = [f'# {name}: reported beside reproduced', '',
             f'Written by `{command}` from the {len(stored)} runs stored in `runs/{name}/` '
             f'(trained {run_dates(stored)}), one file per row and seed, with the set-up '
             f'fingerprint, commit, hardware and versions of each. '
             + (f'The executed copy `{copy.name}` shows the notebook run from these stored runs.'
                if copy.exists() else 'There is no executed copy yet.'), '']
    if error and _missing_data(error, name):  # stopped at the data step: say so first, in the README's words
        missing = _missing_data(error, name)
        lines += [f'**{missing[0].upper()}{missing[1:]}.**', '']
    if error:
        lines += ['**The last execution of the notebook stopped with an error**, so rows without '
                  'a number were not run:', '', '```', error, '```', '']
    if not lab.rows:
        lines += ['No rows are known yet: the notebook has not reached its rows in a run.', '']
    else:
        lines += [table_markdown(lab), '',
                  'Verdict rule: a reported run is reproduced when our mean over at least 3 seeds is '
                  'within 1.5 points of it, or it lies inside our min..max; a reported failure is '
                  'reproduced when every seed fails the same way. With fewer than 3 seeds a row says '
                  'what was measured and gives no verdict ("open"). A hypothesis row trains another '
                  'reading of the report; it confirms an explanation when it reproduces the row it '
                  'explains. Three claims are judged on stored runs instead: a failure that '
                  'depends on the seed (some but not all of 5 seeds or more fail), a number that '
                  'is one noisy last epoch of one run (it lies inside the band the test accuracy of '
                  f'3 seeds visits over their last {LAST_EPOCHS} epochs), and a number that is one '
                  f'draw of the seed-to-seed spread (it lies inside the min..max of {SPREAD_SEEDS} '
                  'seeds or more).', '']
    if lab.rows and not short_rows_markdown(lab).startswith('Every row'):
        lines += ['## Rows short of their seeds', '', short_rows_markdown(lab), '']
    figure = _plot_base(lab.records('base'), reports / f'{name}_base.png')
    if figure:
        lines += ['## Base run: training curves', '', f'![base run, every seed]({figure.name})', '']
    lines += ['## Every stored run', '',
              '| row | seed | status | epochs | train loss | train acc | test acc | best (epoch) | '
              'hardware | torch | commit | date | wall time | set-up |',
              '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for r in stored:
        spec = lab.rows.get(r['row'])
        state = ('not in the notebook' if spec is None else 'current' if is_current(r, spec) else
                 '**stale**: re-run by the command')
        lines.append(f"| {r['row']} | {r['seed']} | {r['status']} | {r['epochs']} | {_num(r.get('train_loss'))} | "
                     f"{_num(r.get('train_acc'))} | {_num(r.get('test_acc'))} | "
                     f"{_num(r.get('best_test_acc'))} ({r.get('best_epoch')}) | "
                     f"{r.get('hardware') or r.get('device')} | {r.get('torch')} | "
                     f"{(r.get('commit') or '?')[:7]} | {r['date'][:16]} | {r['wall_s'] / 60:.1f} min | {state} |")
    if not stored:
        lines.append('| (none yet) |' + ' |' * 13)
    total = sum(r['wall_s'] for r in stored)
    lines += ['', f'Total training time of the stored runs: {total / 3600:.1f} h.', '']
    path = reports / f'{name}.md'
    path.write_text('\n'.join(lines))
    return path


def results_table(reports, notebook_names):
    """The README's table: each variant's base row, reported beside ours."""
    lines = ['| variant | base run: reported | ours: mean ± std (min..max, n) | verdict | hardware | report |',
             '| --- | --- | --- | --- | --- | --- |']
    for name in notebook_names:
        lab = Lab.from_store(name, runs_folder(reports, name))
        error = last_error(reports, name)
        if 'base' not in lab.rows:
            why = _missing_data(error, name) or 'no rows stored yet'
            lines.append(f'| {name} | - | - | {why} | - | [{name}.md](reports/{name}.md) |')
            continue
        row = table_markdown(lab, ['base']).splitlines()[-1].split(' | ')
        _, _, reported, ours, verdict_text = row[:5]
        if not lab.records('base'):
            verdict_text = _missing_data(error, name) or verdict_text
        hardware = ', '.join(sorted({r.get('hardware') or r['device'] for r in lab.records('base')})) or '-'
        lines.append(f'| {name} | {reported} | {ours} | {verdict_text} | {hardware} | '
                     f'[{name}.md](reports/{name}.md) |')
    return '\n'.join(lines)


def _missing_data(error, name=''):
    """'not yet run: no CIFAR-10 here; ...' when the notebook stopped at its data step."""
    if error and error.startswith('DataError: ') and ' could not be loaded' in error:
        data_set = error[len('DataError: '):].split(' could not be loaded')[0]
        return f'not yet run: no {data_set} here; run `python -m my_utils.repro {name[:2]}` where it is'
    return None


def update_readme(readme, reports, notebook_names):
    """Replace the README's results table between its markers; False when it has none."""
    readme = Path(readme)
    text = readme.read_text() if readme.exists() else ''
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    table = results_table(reports, notebook_names)
    readme.write_text(text[:start + len(README_START)] + '\n' + table + '\n' + text[end:])
    return True


def _num(value):
    return '-' if value is None else f'{value:.4f}'


def _plot_base(runs, path):
    """Train loss, train acc and test acc per epoch for every seed of the base run."""
    if not runs:
        return None
    figure = Figure(figsize=(9, 2.8), dpi=100, layout='constrained')
    axes = figure.subplots(1, 3)
    for run in runs:
        history = run['history']
        epochs = range(1, len(history['train_loss']) + 1)
        for ax, key in zip(axes, ('train_loss', 'train_acc', 'test_acc')):
            ax.plot(epochs, history[key], label=f"seed {run['seed']}")
    for ax, title in zip(axes, ('train loss', 'train acc', 'test acc')):
        ax.set_title(title)
        ax.set_xlabel('epoch')
        ax.grid(True)
    axes[-1].legend()
    figure.savefig(path)
    return path
