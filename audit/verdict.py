"""The verdict rule of the coursework reproduction, and the outcome of a hypothesis.

A single reported run is reproduced when the mean over at least 3 seeds is within 1.5 points
of it, or it lies inside the seeds' min..max. A reported failure is reproduced when every seed
run fails the same way (loss nan, or accuracy at chance). Fewer than 3 seeds give no verdict:
the row says what it measured and how many seeds are missing.
"""
import math
import statistics

TOLERANCE = 0.015   # 1.5 points
CHANCE = 0.11       # no better than guessing among 10 classes
MIN_SEEDS = 3
# A fifth of a 100-epoch run: the stretch where 02's test accuracy has stopped rising and only
# swings from epoch to epoch, so a single run's last number could have been any of these.
LAST_EPOCHS = 20
# Seeds a 'seed spread' claim needs: a run drawn from the same spread as 10 others lands below
# all of them 1 time in 11, so a reported number outside their min..max is unlikely to be a draw.
SPREAD_SEEDS = 10
# Seeds a 'some seeds fail' claim needs: with none failing, 5 still allow a failure on 45 % of seeds.
FAIL_SEEDS = 5


def metric_value(record, metric='test_acc'):
    """A run's number for `metric`: a key of the record, or 'test_acc_5_10_15' (the best test
    accuracy among those epochs, from the stored history). None when it has none."""
    if record.get(metric) is not None:
        return record[metric]
    epochs = metric[len('test_acc_'):].split('_') if metric.startswith('test_acc_') else []
    accs = (record.get('history') or {}).get('test_acc') or []
    if not epochs or not all(e.isdigit() for e in epochs) or not accs:
        return None
    at = [accs[int(e) - 1] for e in epochs if 1 <= int(e) <= len(accs)]
    return max(at) if at else accs[-1]


def diverged(record):
    loss = record.get('train_loss')
    return record.get('status') == 'diverged' or loss is None or not math.isfinite(loss)


def failed(record, kind='chance'):
    """Whether a run failed: 'nan' (the loss stopped being finite) or 'chance' (nan, or accuracy
    no better than chance)."""
    if kind == 'nan':
        return diverged(record)
    return diverged(record) or (record.get('test_acc') or 0) <= CHANCE


def _seeds(n):
    return f'{n} seed{"s" * (n != 1)}'


def _missing(n, needed=MIN_SEEDS):
    return '' if n >= needed else f' ({needed} needed)'


def _rate_bound(n):
    """The highest failure rate still in line, at 95 %, with none of n seeds failing:
    1 - 0.05 ** (1 / n) (45 % for 5 seeds, 26 % for 10)."""
    return 1 - 0.05 ** (1 / n)


def endings(records, metric='test_acc'):
    """How the seeds ended, as (count, words) for each way some seed ended: trained (with the
    mean), stayed at chance, diverged (with the epochs). Every line that counts seeds is built
    from this one helper, so that they all read alike."""
    trained = [r for r in records if not failed(r)]
    stuck = [r for r in records if failed(r) and not diverged(r)]
    nan = [r for r in records if diverged(r)]
    accs = [v for v in (metric_value(r, metric) for r in trained) if v is not None]
    ways = [(len(trained), f'seeds trained (mean {statistics.fmean(accs):.4f})')] if accs else []
    ways += [(len(stuck), 'stayed at chance without diverging')] if stuck else []
    if nan:
        ways.append((len(nan), f'diverged (loss nan) in epoch {", ".join(str(r.get("epochs")) for r in nan)}'))
    return ways


def counted(records, metric='test_acc'):
    """'1/3 seeds trained (mean 0.8600), 1/3 stayed at chance without diverging, 1/3 diverged
    (loss nan) in epoch 3'."""
    return ', '.join(f'{k}/{len(records)} {words}' for k, words in endings(records, metric))


def how_failed(records, say_seeds=False):
    """How runs that all failed ended: 'diverged (loss nan) in epoch 1, 1, 36', 'stayed at chance
    without diverging' (with ' on 3 seeds' when say_seeds), or each way counted when they ended in
    both (the counts then say how many seeds)."""
    ways = endings(records)
    if len(ways) > 1:
        return counted(records)
    return ways[0][1] + (f' on {_seeds(len(records))}' if say_seeds else '')


def verdict(reported, records, failure=None, metric='test_acc'):
    """(status, text): status is 'reproduced', 'not reproduced', 'open' (fewer than 3 seeds),
    'not yet run' or 'measured' (no reported number)."""
    n = len(records)
    if not n:
        return 'not yet run', 'no stored run'
    values = [v for v in (metric_value(r, metric) for r in records) if v is not None]
    if reported is None:
        return 'measured', f'beyond the report ({_seeds(n)})'
    if failure:
        fails = [r for r in records if failed(r, failure)]
        if len(fails) == n:
            status = 'reproduced' if n >= MIN_SEEDS else 'open'
            return status, f'fails as reported on {len(fails)}/{n} seeds: {how_failed(fails)}{_missing(n)}'
        status = 'not reproduced' if n >= MIN_SEEDS else 'open'
        # Count each way a seed ended, so that a seed stuck at chance is not called trained.
        return status, f'{counted(records, metric)}, where the report failed{_missing(n)}'
    if all(failed(r) for r in records):
        status = 'not reproduced' if n >= MIN_SEEDS else 'open'
        return status, f'{how_failed(records, say_seeds=True)}, where the report trained{_missing(n)}'
    mean = statistics.fmean(values)
    # The rule counts failed seeds in the mean and the min..max; say how many there were, since
    # a min..max that starts at chance holds almost any reported number.
    mixed = f'; {counted(records, metric)}' if any(failed(r) for r in records) else ''
    if abs(mean - reported) <= TOLERANCE:
        text = f'mean within {TOLERANCE * 100:.1f} points on {_seeds(n)}'
    elif n > 1 and min(values) <= reported <= max(values):
        text = f'the report lies inside our min..max on {_seeds(n)}'
    else:
        status = 'not reproduced' if n >= MIN_SEEDS else 'open'
        return status, f'mean {(mean - reported) * 100:+.1f} points on {_seeds(n)}{mixed}{_missing(n)}'
    return ('reproduced' if n >= MIN_SEEDS else 'open'), text + mixed + _missing(n)


def summarize(values):
    """'mean ± std (min..max, n=K)'."""
    values = [v for v in values if v is not None]
    if not values:
        return '-'
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{mean:.4f} ± {std:.4f} ({min(values):.4f}..{max(values):.4f}, n={len(values)})'


def last_epochs_band(records, epochs=LAST_EPOCHS):
    """(low, high) of the test accuracy the runs that trained visit in their last `epochs`
    epochs; None when no run trained."""
    accs = [a for r in records if not failed(r)
            for a in ((r.get('history') or {}).get('test_acc') or [])[-epochs:]]
    return (min(accs), max(accs)) if accs else None


def _judged(enough, holds):
    """A claim's word: open until its runs are enough to judge it, then confirmed or refuted."""
    return 'open' if not enough else 'confirmed' if holds else 'refuted'


def combined(words):
    """The word of several claims or readings: confirmed when one is, refuted when all are."""
    return ('confirmed' if 'confirmed' in words else
            'refuted' if words and all(w == 'refuted' for w in words) else 'open')


def _by_rule(target, records):
    status, text = verdict(target['reported'], records, target.get('failure'),
                           target.get('metric', 'test_acc'))
    return {'reproduced': 'confirmed', 'not reproduced': 'refuted'}.get(status, 'open'), text


def _some_seeds_fail(target, records):
    fails = sum(failed(r, target.get('failure') or 'nan') for r in records)
    enough = len(records) >= FAIL_SEEDS
    word = _judged(enough, 0 < fails < len(records))
    # None failing refutes only a common failure: say how common it could still be.
    bound = (f' (so at most {_rate_bound(len(records)):.0%} of seeds fail, at 95% confidence)'
             if records and not fails else '')
    return word, f'{fails}/{len(records)} seeds fail{bound}{_missing(len(records), FAIL_SEEDS)}'


def _last_epochs(target, records):
    band, enough = last_epochs_band(records), len(records) >= MIN_SEEDS
    if band is None:
        return (_judged(enough, False),
                f'no run of its {_seeds(len(records))} trained, so it has no last epochs to compare '
                f'with{_missing(len(records))}')
    # The band comes from the seeds that trained only; it needs 3 of them.
    trained = sum(not failed(r) for r in records)
    whose = (f'its {_seeds(trained)}' if trained == len(records) else
             f'the {trained} of its {_seeds(len(records))} that trained,')
    inside = band[0] <= target['reported'] <= band[1]
    return _judged(trained >= MIN_SEEDS, inside), (
        f'{target["reported"]:.4f} lies {"inside" if inside else "outside"} the {band[0]:.4f}..'
        f'{band[1]:.4f} of {whose} over their last {LAST_EPOCHS} epochs{_missing(trained)}')


def _seed_spread(target, records):
    metric = target.get('metric', 'test_acc')
    values = [v for v in (metric_value(r, metric) for r in records) if v is not None]
    missing = _missing(len(records), SPREAD_SEEDS)
    if not values:
        return 'open', f'no stored run{missing}'
    low, high, reported = min(values), max(values), target['reported']
    where = 'below' if reported < low else 'above' if reported > high else 'inside'
    word = _judged(not missing, where == 'inside')
    text = f'{reported:.4f} lies {where} the {low:.4f}..{high:.4f} of its {_seeds(len(values))}'
    if where != 'inside':
        # How far out, in the seeds' own spread; the odds below assume nothing about its shape.
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        if std > 0:
            distance = abs(reported - statistics.fmean(values)) / std
            text += f' ({distance:.1f} standard deviations {where} their mean)'
        # A draw from the same spread lands below (or above) all n seeds 1 time in n + 1.
        text += f'; a run of the same spread lands {where} all of them one time in {len(values) + 1}'
    return word, text + missing


JUDGES = {None: _by_rule, 'some seeds fail': _some_seeds_fail, 'last epochs': _last_epochs,
          'seed spread': _seed_spread}


def outcome(target, hypothesis_rows, records_of):
    """Whether a hypothesis explains a row that does not reproduce: (word, text).

    The hypothesis rows are run in the reading the hypothesis proposes; judged by the verdict
    rule against the target row's reported number: 'confirmed' when one of them reproduces it,
    'refuted' when every one is run on 3 seeds and none does, else 'open'.
    kind 'some seeds fail' (a failure that depends on the seed, on the row's own runs or on a
    hypothesis row's, such as 02's lr 0.9 in TF32): confirmed when some but not all of at least
    5 seeds fail, refuted when none or all of them do.
    kind 'last epochs' (the report's number is one noisy last epoch of one run like the
    hypothesis row's): confirmed when it lies inside the band the row's test accuracy visits
    over the last LAST_EPOCHS epochs of at least 3 seeds; refuted when it lies outside.
    kind 'seed spread' (the report's number is one draw of the seed-to-seed spread): confirmed
    when it lies inside the min..max of at least SPREAD_SEEDS seeds, refuted when outside."""
    parts, words = [], []
    for row in hypothesis_rows:
        kind = row.get('test')
        word, text = JUDGES[kind](target, records_of(row['row']))
        words.append(word)
        parts.append(f'`{row["row"]}`: {text}')
    return combined(words), '; '.join(parts)
