"""A variant's stored runs judged by the rule (rule.py): the records the report, summary.json, the
README line and the lessons' results cells are rendered from.

Rows come from the variant's module (its one definition), the runs from the store; nothing is
trained. A row's role: 'reported' (a number of the report), 'reading' (another way the report may
have made a number it explains), 'beyond' (neither).
"""
import datetime
import functools
import statistics
import subprocess
from pathlib import Path

from . import rule, variants
from .lab import Lab
from .settings import Settings
from .store import RunStore, last_stop


def open_lab(name, runs):
    """A Lab over the stored runs of variant `name` in the folder `runs`, rows from its module."""
    module = variants.load(name)
    lab = Lab(module.NAME, settings=Settings(quick=False, stored_only=True, runs=str(runs)))
    plan = module.plan(False, 'cpu')  # declares rows; loads no data
    lab.declare(plan.rows, plan.train, plan.setup)
    if plan.later:
        lab.declare(plan.later(lab), plan.train, plan.setup)
    return lab


def _declared(text):
    """'2026-12-02 00:56 537dc8d' -> {'date': '2026-12-02T00:56', 'commit': '537dc8d'}."""
    if not text:
        return None
    day, time, *commit = text.split(' ', 2)
    return {'date': f'{day}T{time}', 'commit': commit[0] if commit else None}


def rule_spec(spec):
    return {'row': spec['row'], 'reported': spec['reported'], 'failure': spec['failure'],
            'metric': spec['metric'], 'seeds': spec.get('seeds'), 'explains': spec.get('explains') or [],
            'declared': _declared(spec.get('declared'))}


def role(spec):
    if spec['reported'] is not None:
        return 'reported'
    return 'reading' if spec.get('explains') else 'beyond'


def _points(value):
    return f'{value * 100:.1f} points'


def row_record(spec, records):
    """One row's numbers and words (a JSON-able dict)."""
    rs = rule_spec(spec)
    v = rule.judge_row(rs, records)
    record = {
        'row': spec['row'], 'role': role(spec), 'setup': spec['setup'], 'note': spec.get('note') or '',
        'claim': spec.get('claim'), 'explains': spec.get('explains') or [], 'reported': spec['reported'],
        'failure': spec['failure'], 'metric': spec['metric'], 'n': v.n, 'trained': v.trained,
        'mean': v.mean, 'std': v.std if v.std is not None else (0.0 if v.trained == 1 else None),
        'min': v.low, 'max': v.high,
        'failures': {'diverged': len(v.diverged_epochs), 'chance': v.at_chance,
                     'diverged_in_epoch': list(v.diverged_epochs)},
        'fail_rate': (None if v.failures is None else
                      {'k': v.failures, 'n': v.n, 'low': v.rate_ci[0], 'high': v.rate_ci[1]}),
        'verdict': v.status, 'why': v.why, 'seeds_note': rule.seeds_note(rs, records),
        'seeds_wanted': v.wanted, 'first_result': v.first_date}
    return record, v


def summarize(lab, figure=None):
    """The judged rows of one variant, its counts, sign tests and provenance (JSON-able)."""
    module = variants.load(lab.name)
    records = {row_id: lab.records(row_id) for row_id in lab.rows}
    rows, verdicts = [], {}
    for row_id, spec in lab.rows.items():
        record, verdicts[row_id] = row_record(spec, records[row_id])
        rows.append(record)
    by_id = {r['row']: r for r in rows}
    for r in rows:
        if r['role'] != 'reported':
            continue
        target = rule_spec(lab.rows[r['row']])
        readings = [(rule_spec(s), rule.judge_reading(target, records[s['row']]))
                    for s in lab.rows.values() if r['row'] in (s.get('explains') or [])]
        explanation = rule.explain(target, verdicts[r['row']], readings) if readings else None
        r['readings'] = [{'row': o.row, 'claim': lab.rows[o.row].get('claim') or lab.rows[o.row]['setup'],
                          'fit': o.fit.status, 'why': o.fit.verdict.why, 'distance': o.fit.distance,
                          'post_hoc': o.post_hoc, 'declared': o.declared}
                         for o in (explanation.readings if explanation else ())]
        r['explanation'] = _explanation(r, explanation, verdicts[r['row']])
        r['sentence'] = _sentence(r)
    for r in rows:
        r.setdefault('readings', [])
        r.setdefault('explanation', None)
        r.setdefault('sentence', '')
    stop = last_stop(lab.store.folder) if lab.store.folder else None
    any_run = any(records.values())
    not_yet = None
    if stop and not any_run:
        dataset = stop.get('dataset') or 'its data set'
        not_yet = {'why': f'{dataset} is not on the machines this audit ran on (they have no network).',
                   'command': f'python -m audit {lab.name[:2]}'}
        for r in rows:
            if r['role'] == 'reported':
                r['sentence'] = f'not yet run: {dataset} is not here'
    summary = {
        'name': lab.name, 'lesson': f'notebooks/{lab.name}.ipynb', 'report': f'reports/{lab.name}.md',
        'not_yet_run': not_yet, 'rows': rows,
        'other_numbers': [dict(n, why=f'not yet run: {stop.get("dataset") or "the data"} is not here'
                               if stop else n.get('why', 'not yet run'))
                          for n in getattr(module, 'OTHER_NUMBERS', [])],
        'counts': _counts(rows), 'sign_tests': _sign_tests(module, by_id),
        'short': _short(lab, rows), 'provenance': _provenance(lab),
        'figure': figure}
    summary['counts_sentence'] = _counts_sentence(summary['counts'])
    if not_yet:
        rows = summary['counts']['reported']
        summary['counts_sentence'] = (f"Not yet run: {rows} reported row{'s' * (rows != 1)} and "
                                      f"{len(summary['other_numbers'])} other reported numbers. {not_yet['why']}")
    summary['intro'] = _intro(lab, summary)
    return summary


def _explanation(r, explanation, verdict):
    if verdict.status in ('reproduced', 'measured'):
        return None
    if explanation is None:
        status, words = 'unexplained', 'no reading of this row was declared'
        return {'status': status, 'by': [], 'closest': None, 'distance': None, 'sentence': words}
    by = list(explanation.by)
    if explanation.status == 'explained':
        words = f'explained by `{by[0]}`: it fits, and every other reading does not'
    elif explanation.status == 'consistent with several':
        words = ('consistent with ' + ' and '.join(f'`{b}`' for b in by)
                 + ': these runs cannot tell them apart')
    elif explanation.status == 'unexplained':
        closest = explanation.closest
        far = ('' if explanation.distance is None else
               f' ({_points(explanation.distance)} off)' if r['failure'] is None else
               f' (its failure rate is {explanation.distance * 100:.0f} points short of half)')
        words = 'unexplained: no reading fits' + (f'; the closest is `{closest}`{far}' if closest else '')
    else:
        waiting = [o.row for o in explanation.readings if o.fit.status == 'open']
        words = ('open: ' + (', '.join(f'`{w}`' for w in waiting) + ' not judged yet (too few seeds)'
                             if waiting else 'the row itself has too few seeds'))
    if any(o.post_hoc for o in explanation.readings) and explanation.status != 'open':
        words += ' (readings post hoc)'
    return {'status': explanation.status, 'by': by, 'closest': explanation.closest,
            'distance': explanation.distance, 'sentence': words}


def _sentence(r):
    """One plain sentence for a reported row."""
    if r['verdict'] in ('not yet run', 'open'):
        return f"{r['verdict']}: {r['why']}"
    what = {'reproduced': 'Reproduced', 'consistent': 'Consistent', 'not reproduced': 'Not reproduced'}[r['verdict']]
    text = f"{what}: {_fail_words_dict(r) if r['failure'] and r['fail_rate'] else r['why']}"
    if r['fail_rate'] and r['failure'] is None and r['trained']:
        text += f" ({r['fail_rate']['k']} of {r['n']} seeds failed, counted apart)"
    if r['seeds_note']:
        text += f" [{r['seeds_note']}]"
    if r['explanation']:
        text += f"; {r['explanation']['sentence']}"
    return text + '.'


def _fail_words_dict(r):
    rate, way = r['fail_rate'], 'diverged' if r['failure'] == 'nan' else 'failed'
    epochs = r['failures']['diverged_in_epoch']
    where = f" (in epoch {', '.join(map(str, epochs))})" if epochs and r['failure'] == 'nan' else ''
    return (f"{rate['k']} of {rate['n']} seeds {way}{where}; 95 % interval of the rate "
            f"{rate['low'] * 100:.0f} to {rate['high'] * 100:.0f} %")


def _counts(rows):
    reported = [r for r in rows if r['role'] == 'reported']
    counts = {'reported': len(reported), 'reproduced': 0, 'consistent': 0, 'explained': 0,
              'consistent with several': 0, 'unexplained': 0, 'open': 0, 'not yet run': 0}
    for r in reported:
        if r['verdict'] in ('reproduced', 'consistent', 'not yet run'):
            counts[r['verdict']] += 1
        elif r['verdict'] == 'open':
            counts['open'] += 1
        else:
            counts[r['explanation']['status']] += 1
    return counts


def _counts_sentence(c):
    missed = c['explained'] + c['consistent with several'] + c['unexplained']
    parts = [f"{c['reproduced']} of {c['reported']} reported rows reproduced"]
    if c['consistent']:
        parts.append(f"{c['consistent']} consistent (a reported failure that some of our seeds show)")
    if missed:
        parts.append(f"{missed} not reproduced ({c['explained']} explained, {c['consistent with several']} "
                     f"consistent with several readings, {c['unexplained']} unexplained)")
    if c['open']:
        parts.append(f"{c['open']} open (too few seeds or readings still open)")
    if c['not yet run']:
        parts.append(f"{c['not yet run']} not yet run")
    return '; '.join(parts) + '.'


def _sign_tests(module, by_id):
    """A sign test per table of the variant: TABLES maps a name to row ids (compared with the row's
    own mean) or to (row id, compared row id) pairs (compared with another row's mean)."""
    tests = []
    for table, members in getattr(module, 'TABLES', {}).items():
        pairs = [m if isinstance(m, tuple) else (m, m) for m in members]
        values = [(by_id[a]['reported'], by_id[b]['mean']) for a, b in pairs
                  if a in by_id and b in by_id and by_id[a]['failure'] is None and by_id[b]['mean'] is not None]
        if len(values) < 3:
            continue
        t = rule.sign_test(values)
        tests.append({'table': table, 'rows': len(values), 'below': t.below, 'above': t.above, 'ties': t.ties,
                      'p': t.p, 'median_offset_points': t.median_offset,
                      'sentence': (f"{table}: {t.below} of {len(values)} reported numbers lie below our mean "
                                   f"and {t.above} above (sign test, two-sided p = {t.p:.3f}); the median of "
                                   f"reported minus ours is {t.median_offset:+.1f} points.")})
    return tests


def _short(lab, rows):
    short = []
    for r in rows:
        spec = lab.rows[r['row']]
        needed = max(spec.get('seeds_run') or spec.get('seeds') or 0, rule.MIN_SEEDS)
        if r['n'] < needed:
            gpu = ' --device cuda' if spec.get('needs') == 'cuda' else ''
            short.append({'row': r['row'], 'stored': r['n'], 'needed': needed,
                          'command': f'python -m audit {lab.name[:2]} --rows "{r["row"]}"{gpu}'})
    return short


def _provenance(lab):
    """What the stored runs record, counted, and which fields the migrated ones lack."""
    runs = [r for row_id in lab.rows for r in lab.records(row_id)]
    if not runs:
        return 'No stored run yet.'
    fields = {'commit': 'commit', 'torch': 'torch version', 'data_sha256': 'data checksum',
              'hardware': 'hardware (CPU model or GPU name)'}
    def known(r, key):
        value = r.get(key)
        return value is not None and 'not recorded' not in str(value)
    counts = ', '.join(f'{label} {sum(known(r, k) for r in runs)}' for k, label in fields.items())
    migrated = [r for r in runs if r.get('migrated_from')]
    text = (f'{len(runs)} stored runs are counted above. Runs that record each field: {counts}. ')
    if migrated:
        text += (f'{len(migrated)} of them were migrated from an older results file: they record no CPU '
                 'model, no data checksum and only the versions known at migration, and their set-up '
                 'fingerprint was computed at migration (so it matches by construction); their rows are '
                 'named in the every-run file by "cpu (model not recorded)". ')
    late = [r for r in runs if _commit_after_run(r)]
    if late:
        text += (f'For {len(late)} runs the recorded commit was made after the run itself (by up to '
                 f"{max(_commit_after_run(r) for r in late):.1f} days): it was filled in at migration, so "
                 'it does not name the code that trained them. ')
    devices = sorted({r.get('hardware') or r.get('device') for r in runs})
    return text + 'Hardware: ' + '; '.join(devices) + '.'


@functools.lru_cache(maxsize=None)
def _commit_date(commit):
    """When a commit was made (naive UTC), from this checkout's history; None when unknown."""
    try:
        out = subprocess.run(['git', '-C', str(Path(__file__).resolve().parent), 'show', '-s', '--format=%ct',
                              commit.split('+')[0]], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return datetime.datetime.utcfromtimestamp(int(out)) if out.isdigit() else None


def _commit_after_run(record):
    """Days by which a run's recorded commit postdates the run (0 when it does not, or is unknown)."""
    made = _commit_date(record['commit']) if record.get('commit') else None
    if made is None:
        return 0
    days = (made - datetime.datetime.fromisoformat(record['date'][:19])).total_seconds() / 86400
    return days if days > 1 else 0  # a day: sessions logged local times; migration came days later


def _intro(lab, summary):
    runs = [r for row_id in lab.rows for r in lab.records(row_id)]
    dates = sorted(r['date'][:10] for r in runs)
    span = f'{dates[0]} to {dates[-1]}' if dates else 'none yet'
    return (f"Written by `python -m audit {lab.name[:2]} --report-only` from the {len(runs)} stored runs "
            f"in `runs/{lab.name}/` (trained {span}), judged by the rule at the end. The lesson is "
            f"[{summary['lesson']}](../{summary['lesson']}); the audit notebook, executed from the same "
            f"runs, is [{lab.name}.ipynb]({lab.name}.ipynb).")


def readings_markdown(summary):
    lines = []
    for r in summary['rows']:
        if not r['readings']:
            continue
        lines.append(f"**{r['row']}**: {r['explanation']['sentence'] if r['explanation'] else 'reproduced'}")
        lines.append('')
        lines += [f"- `{o['row']}` ({o['claim']}): {o['fit']}, {o['why']}{'; post hoc' if o['post_hoc'] else ''}"
                  for o in r['readings']]
        lines.append('')
    return '\n'.join(lines) or 'No reading was declared.'
