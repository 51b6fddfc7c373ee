"""What the audit writes from stored runs alone: reports/<name>.md, its every-run file,
reports/summary.json, the README's results lines and each lesson's results cell.

Everything is rendered from the records judge.summarize() returns; nothing here is parsed back.
"""
import json
from pathlib import Path

from matplotlib.figure import Figure

from . import judge, rule, variants
from .store import RunStore, write_json

START = '<!-- results: written by python -m audit; do not edit by hand -->'
END = '<!-- /results -->'
GLOSSARY = [
    ('seed', 'the number that fixes a run\'s random initial weights and data order; each seed is one run'),
    ('trained seeds', 'seeds whose loss stayed finite and whose accuracy rose above chance (0.11)'),
    ('diverged', 'the training loss became nan (not a number) and the run stopped'),
    ('reading', 'another way the report may have produced its number (a bug, a setting, a library '
                'version), trained as a row of its own'),
    ('post hoc', 'a reading declared after the result it explains was known'),
    ('fingerprint', 'a short hash of a run\'s set-up (model, settings, data subset); a stored run whose '
                    'fingerprint no longer matches its row is not counted'),
    ('migrated run', 'a run trained before this store existed and copied into it later; it lacks some '
                     'provenance fields (listed under Provenance)'),
]


def _pct(value):
    return '-' if value is None else f'{value:.4f}'


def ours_text(row):
    """'0.8730 ± 0.0066 (0.8689..0.8807, n=3)', with the failed seeds counted apart."""
    if not row['n']:
        return '-'
    parts = []
    if row['trained']:
        parts.append(f"{row['mean']:.4f} ± {row['std']:.4f} ({row['min']:.4f}..{row['max']:.4f}, "
                     f"n={row['trained']})")
    failed = row['failures']
    if failed['diverged']:
        parts.append(f"{failed['diverged']} diverged")
    if failed['chance']:
        parts.append(f"{failed['chance']} at chance")
    return '; '.join(parts)


def reported_text(row):
    if row['reported'] is None:
        return '-'
    text = f"{row['reported']:.4f}"
    return text + (' (loss nan)' if row['failure'] == 'nan' else ' (chance)' if row['failure'] else '')


def render_report(summary):
    """reports/<name>.md from one variant's summary."""
    name = summary['name']
    lines = [f"# {name}: the report's numbers beside ours", '',
             summary['intro'], '']
    if summary['not_yet_run']:
        lines += [f"**Not yet run.** {summary['not_yet_run']['why']} Run "
                  f"`{summary['not_yet_run']['command']}` where it is.", '']
    lines += ['## Every reported row', '', reported_table(summary), '', summary['counts_sentence'], '']
    if summary['sign_tests']:
        lines += ['## Across the table', '']
        lines += [f"- {test['sentence']}" for test in summary['sign_tests']] + ['']
    readings = [row for row in summary['rows'] if row.get('readings')]
    if readings:
        lines += ['## Readings of the misses', '',
                  'Each reading is trained as a row of its own and judged by the same rule against the '
                  'reported number.', '']
        for row in readings:
            lines.append(f"**{row['row']}** (reported {reported_text(row)}): {row['explanation']['sentence']}")
            lines.append('')
            lines += [f"- `{r['row']}` — {r['claim']}: {r['fit']} ({r['why']}){'; post hoc' if r['post_hoc'] else ''}"
                      for r in row['readings']]
            lines.append('')
    beyond = [row for row in summary['rows'] if row['role'] == 'beyond']
    if beyond:
        lines += ['## Rows beyond the report', '', '| row | set-up | ours | note |', '| --- | --- | --- | --- |']
        lines += [f"| {row['row']} | {row['setup']} | {ours_text(row)} | {row['note'] or '-'} |" for row in beyond]
        lines.append('')
    if summary.get('figure'):
        lines += ['## Base run: training curves', '', f"![every seed of the base row]({summary['figure']})", '']
    if summary['short']:
        lines += ['## Rows short of their seeds', '', '| row | seeds stored | needed | command |',
                  '| --- | --- | --- | --- |']
        lines += [f"| {s['row']} | {s['stored']} | {s['needed']} | `{s['command']}` |" for s in summary['short']]
        lines.append('')
    lines += ['## The rule', '', rule.RULE_TEXT, '', '## Terms', '']
    lines += [f'- **{term}**: {meaning}' for term, meaning in GLOSSARY] + ['']
    lines += ['## Provenance', '', summary['provenance'], '',
              f"Every stored run, one line each: [{name}_runs.md]({name}_runs.md).", '']
    return '\n'.join(lines)


def render_runs(name, records, specs):
    """reports/<name>_runs.md: the every-run appendix."""
    lines = [f'# {name}: every stored run', '', f'Back to the report: [{name}.md]({name}.md).', '',
             '| row | seed | status | epochs | train loss | train acc | test acc | best (epoch) | '
             'hardware | torch | commit | date | minutes |',
             '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for r in records:
        if r['row'] not in specs:
            continue
        lines.append(f"| {r['row']} | {r['seed']} | {r['status']} | {r['epochs']} | "
                     f"{_pct(r.get('train_loss'))} | {_pct(r.get('train_acc'))} | {_pct(r.get('test_acc'))} | "
                     f"{_pct(r.get('best_test_acc'))} ({r.get('best_epoch')}) | {r.get('hardware') or r.get('device')} | "
                     f"{r.get('torch') or 'not recorded'} | {(r.get('commit') or 'not recorded')[:7]} | "
                     f"{r['date'][:16]} | {r['wall_s'] / 60:.1f} |")
    if len(lines) == 6:
        lines.append('| (none yet) |' + ' |' * 12)
    return '\n'.join(lines) + '\n'


def write_report(name, reports):
    """Write reports/<name>.md, reports/<name>_runs.md and the base figure; returns the report's path."""
    reports = Path(reports)
    lab = judge.open_lab(name, reports / 'runs')
    figure = _plot_base(lab.records('base'), reports / f'{name}_base.png')
    summary = judge.summarize(lab, figure=figure.name if figure else None)
    (reports / f'{name}_runs.md').write_text(render_runs(name, lab.store.records(), lab.rows))
    path = reports / f'{name}.md'
    path.write_text(render_report(summary))
    return path


def summaries(reports):
    """Every variant's summary, in order."""
    return [judge.summarize(judge.open_lab(name, Path(reports) / 'runs')) for name in variants.names()]


def summary_json(judged):
    """reports/summary.json from summaries(): per variant and row, the tables' numbers and words."""
    return {'rule': rule.RULE_TEXT,
            'variants': {s['name']: {k: v for k, v in s.items() if k not in ('intro', 'figure')}
                         for s in judged}}


def results_lines(judged):
    """The README's results from summaries(): one line per variant, over every reported row."""
    lines = ['| variant | every reported row, by the rule | base row: reported, ours | report |',
             '| --- | --- | --- | --- |']
    for s in judged:
        base = next((r for r in s['rows'] if r['row'] == 'base'), None)
        base_text = (f"{reported_text(base)}, {ours_text(base)}" if base and base['n'] else
                     f"{reported_text(base)}, not yet run" if base else '-')
        lines.append(f"| {s['name']} | {s['counts_sentence']} | {base_text} | "
                     f"[{s['name']}.md](reports/{s['name']}.md) |")
    return '\n'.join(lines)


def reported_table(summary):
    """Every reported number of a variant: reported, ours, the verdict and one sentence."""
    lines = ['| row | reported | ours: mean ± std (min..max, n) | verdict | in one sentence |',
             '| --- | --- | --- | --- | --- |']
    lines += [f"| {row['row']} | {reported_text(row)} | {ours_text(row)} | {row['verdict']} | {row['sentence']} |"
              for row in summary['rows'] if row['role'] == 'reported']
    lines += [f"| {number['what']} | {number['reported']} | - | not yet run | {number['why']} |"
              for number in summary['other_numbers']]
    return '\n'.join(lines)


def lesson_cell(summary):
    """The markdown a lesson shows between its results markers."""
    return (reported_table(summary) + '\n\n' + summary['counts_sentence'] + ' The audit, with every reading '
            f"and run: [reports/{summary['name']}.md](../reports/{summary['name']}.md).")


def replace_between(text, body):
    """`text` with what lies between the results markers replaced by `body` (None: no markers)."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        return None
    return text[:start + len(START)] + '\n' + body + '\n' + text[end:]


def update_tables(repo):
    """The README's results lines, summary.json and every lesson's results cell, from stored runs."""
    repo = Path(repo)
    reports = repo / 'reports'
    readme = repo / 'README.md'
    judged = summaries(reports)
    new = replace_between(readme.read_text(), results_lines(judged))
    if new is not None:
        readme.write_text(new)
    write_json(reports / 'summary.json', summary_json(judged))
    for s in judged:
        update_lesson(repo / 'notebooks' / f"{s['name']}.ipynb", lesson_cell(s))


def update_lesson(path, body):
    """Replace the results cell of a lesson notebook (its outputs and other cells untouched)."""
    import nbformat
    if not path.exists():
        return False
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == 'markdown' and START in cell.source:
            cell.source = replace_between(cell.source, body)
            nbformat.write(nb, path)
            return True
    return False


def _plot_base(runs, path):
    """Train loss, train acc and test acc per epoch for every seed of the base row."""
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
    figure.savefig(path, metadata={'Software': None})
    return Path(path)
