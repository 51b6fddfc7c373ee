"""Findings of one variant beyond its table, computed from stored runs (no training).

Each function takes a Lab over stored runs and returns a Markdown table or paragraph, so that an
audit notebook shows it and the report can include it. They measure; the rule judges (rule.py).
"""
import math
import statistics

from .lab import Markdown


def _table(header, rows):
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def _mean(values, digits=3):
    values = [v for v in values if v is not None and math.isfinite(v)]
    return f'{statistics.fmean(values):.{digits}f}' if values else '-'


def train_numbers(lab):
    """The report's final train loss and train accuracy beside our means (no verdict: the rule is
    for test accuracy)."""
    rows = []
    for row_id, spec in lab.rows.items():
        reported = spec.get('reported_train')
        if not reported:
            continue
        loss, acc = reported if isinstance(reported, (list, tuple)) else (None, reported)
        runs = lab.records(row_id)
        rows.append([row_id, '-' if loss is None else f'{loss:.4g}', _mean([r['train_loss'] for r in runs]),
                     f'{acc:.4g}', _mean([r['train_acc'] for r in runs]), len(runs)])
    return Markdown(_table(['row', 'reported train loss', 'ours (mean)', 'reported train acc',
                            'ours (mean)', 'seeds'], rows))


def _falls(values):
    """(size, epoch) of each fall between consecutive epochs; epoch is the 1-based epoch after it."""
    return [(values[i - 1] - values[i], i + 1) for i in range(1, len(values))
            if math.isfinite(values[i - 1]) and math.isfinite(values[i])]


def falls_near(lab, epoch=58, window=8, size=0.05):
    """02's 'falls drastically around epoch 58': for every stored run, whether test or train
    accuracy falls by `size` or more between two consecutive epochs within `window` of `epoch`."""
    found, total = [], 0
    for row_id in lab.rows:
        for r in lab.records(row_id):
            total += 1
            hits = [(s, e) for key in ('train_acc', 'test_acc') for s, e in _falls(r['history'][key])
                    if s >= size and abs(e - epoch) <= window]
            if hits:
                s, e = max(hits)
                found.append([row_id, r['seed'], e, f'{s * 100:.1f}'])
    head = (f'{len(found)} of {total} stored runs fall by {size * 100:.0f} points or more between two '
            f'epochs in epochs {epoch - window} to {epoch + window}.')
    return Markdown(head + ('\n\n' + _table(['row', 'seed', 'epoch', 'fall (points)'], found) if found else ''))


def failure_counts(lab, rows):
    """How often each row's seeds diverged (loss nan), with the epochs; Fisher's exact test
    (scipy) of each row against the first."""
    from scipy.stats import fisher_exact

    from .rule import diverged
    counts = {}
    table = []
    for row_id in rows:
        runs = lab.records(row_id)
        nan = [r for r in runs if diverged(r)]
        counts[row_id] = (len(nan), len(runs))
        p = '-'
        if row_id != rows[0] and runs and lab.records(rows[0]):
            (a, n), (b, m) = counts[rows[0]], counts[row_id]
            p = f'{fisher_exact([[a, n - a], [b, m - b]]).pvalue:.2f}'
        table.append([row_id, len(runs), len(nan), ', '.join(str(r['epochs']) for r in nan) or '-', p])
    return Markdown(_table(['row', 'seeds', 'diverged', 'in epoch', f'Fisher p against {rows[0]} (two-sided)'],
                           table))


def loss_jumps(lab, factor=1.5):
    """01: runs whose train loss rises by more than `factor` over the epoch before."""
    found, total = [], 0
    for row_id in lab.rows:
        for r in lab.records(row_id):
            total += 1
            loss = r['history']['train_loss']
            for e in range(1, len(loss)):
                if math.isfinite(loss[e - 1]) and math.isfinite(loss[e]) and loss[e] > factor * loss[e - 1]:
                    found.append([row_id, r['seed'], e + 1, f'{loss[e - 1]:.3f} → {loss[e]:.3f}'])
    head = f'{len(found)} jump(s) of the train loss by more than {(factor - 1) * 100:.0f} % in {total} stored runs.'
    return Markdown(head + ('\n\n' + _table(['row', 'seed', 'epoch', 'train loss'], found) if found else ''))


def closer_model(lab, reported, rows=('base', 'patch4')):
    """01: which of two models is nearer each of the report's numbers (means over stored seeds)."""
    table = []
    for key, value in reported.items():
        means = {row: [r[key] for r in lab.records(row) if r.get(key) is not None] for row in rows}
        if not all(means.values()):
            table.append([key, value, *['-'] * len(rows), '-'])
            continue
        mean = {row: statistics.fmean(v) for row, v in means.items()}
        near = min(rows, key=lambda row: abs(mean[row] - value))
        table.append([key, value, *[f'{mean[row]:.3f}' for row in rows], near])
    return Markdown(_table(['number', 'reported', *[f'{row} (mean)' for row in rows], 'nearer'], table))


def first_epoch_at(lab, row_id, accuracy):
    """04: the first epoch at which each seed of a row reaches `accuracy` (test)."""
    reached = [next((e for e, a in enumerate(r['history']['test_acc'], 1) if a >= accuracy), None)
               for r in lab.records(row_id)]
    hit = sorted(e for e in reached if e is not None)
    if not reached:
        return Markdown(f'`{row_id}` has no stored run.')
    if not hit:
        return Markdown(f'None of the {len(reached)} seeds of `{row_id}` reaches {accuracy}.')
    return Markdown(f'{len(hit)} of {len(reached)} seeds of `{row_id}` reach {accuracy}: first at epoch '
                    f'{hit[0]} to {hit[-1]} (median {statistics.median(hit):g}).')


def grid(lab, reported, metric_of):
    """04's batch x lr grid: reported / our mean per cell."""
    batches = sorted({b for b, _ in reported})
    lrs = sorted({lr for _, lr in reported})
    rows = []
    for b in batches:
        cells = []
        for lr in lrs:
            values = [metric_of(r) for r in lab.records(f'4: b{b} lr{lr}')]
            cells.append(f'{reported[b, lr]:.4f} / {_mean(values, 4)}')
        rows.append([b, *cells])
    return Markdown(_table(['batch \\ lr (reported / ours)', *map(str, lrs)], rows))


def lr_used(lab, row_id='base'):
    """05: the learning rates the plateau scheduler used in each seed of a row."""
    lines = [f"seed {r['seed']}: {sorted(set(r['history'].get('lr') or []), reverse=True)}"
             for r in lab.records(row_id)]
    return Markdown('\n'.join(f'- {line}' for line in lines) or f'`{row_id}` has no stored run.')
