"""The verdict and explanation rule of the audit (SPEC.md, "The rule" and "Explaining a row"), in one place.

Pure functions over plain dicts; the report renders the words. Which SPEC sentence each part implements:
- judge_row: "A reported run is reproduced when, over at least 3 seeds, our mean is within 1.5 points of
  it, or it lies inside the min..max of the seeds that trained. Seeds that diverged (loss nan) or stayed
  at chance are counted and reported apart; they never widen the min..max." Our reading: the mean and
  min..max are over the seeds that trained, so 3 of them are needed; a row whose 3 or more seeds all fail
  where the report trained is not reproduced. Also: "A reported failure ... is reproduced when at least
  half of 3 or more seeds fail the same way; consistent when some but fewer than half do (k of n, with
  the 95 % interval of the rate); not reproduced when none of 5 or more seeds fail", and "Fewer than 3
  seeds: open".
- judge_reading: "A reading fits when the reported number passes the rule above on the reading's runs,
  and does not fit when it fails on 3 or more seeds. For a reported failure, a reading whose seeds fail
  at a rate below half is consistent with it, not a fit."
- explain: "explained by a reading only when that reading fits, the row as written does not, and every
  other declared reading does not fit ... two or more fit: consistent with each ... none fits:
  unexplained, with the closest reading and its distance", and post hoc: "records when it was declared:
  before or after the row's own result was known".
- seeds_note: "Seeds added after a row's verdict was known are shown as such ('3 declared, 10 run')".
- sign_test: "Across one table, say whether the reported numbers sit on one side of ours more often than
  chance would put them (a sign test)".
"""
import datetime
import math
import statistics
from dataclasses import dataclass

from scipy.stats import binomtest

TOLERANCE = 0.015     # 1.5 points of accuracy
MIN_SEEDS = 3         # fewer seeds (or trained seeds) judge nothing
NONE_FAIL_SEEDS = 5   # seeds that must all train before a reported failure is called not reproduced
MAX_SEEDS = 10        # where a verdict hinges on single-run noise, add seeds up to this many
CHANCE = 0.11         # test accuracy no better than guessing among 10 classes

RULE_TEXT = f"""\
- A reported run is **reproduced** when, over at least {MIN_SEEDS} seeds that trained, our mean is within \
{TOLERANCE * 100:.1f} points of it or it lies inside their min..max. Seeds that diverged (loss nan) or \
stayed at chance (test accuracy <= {CHANCE}) are counted apart and never enter the mean or the min..max.
- A reported failure is **reproduced** when at least half of {MIN_SEEDS} or more seeds fail the same way, \
**consistent** when some but fewer than half do (k of n, with the 95 % interval of the rate), and \
**not reproduced** when none of {NONE_FAIL_SEEDS} or more seeds fail.
- Fewer seeds than that: **open**, with what was measured. Where a verdict hinges on the noise of one run, \
seeds are added (up to {MAX_SEEDS}), not epochs.
- A **reading** (another way the report may have been made) is a row of its own: it **fits** when the \
reported number passes the rule on the reading's runs and **does not fit** when it fails on {MIN_SEEDS} or \
more seeds. A row is **explained by** a reading only when that reading fits, the row as written does not, \
and every other declared reading does not fit; when two or more fit, it is **consistent with** each (these \
runs cannot tell them apart); when none fits, it is **unexplained**, with the closest reading. A reading \
declared after the row's first result (or at an unknown time) is marked **post hoc**.
- Across one table, a sign test says whether the reported numbers sit on one side of ours more often than \
chance would put them."""


# ------------------------------------------------------------------ one run
def metric_value(record, metric):
    """A run's number: 'test_acc' (last epoch), 'best_test_acc', or {'best_of_epochs': [5, 10, 15]}
    (the best test accuracy among those epochs of the stored history, 1-based)."""
    if metric in ('test_acc', 'best_test_acc'):
        if record.get(metric) is None:
            raise ValueError(f'run {record.get("row")!r} seed {record.get("seed")}: no {metric}')
        return record[metric]
    epochs = _grid(metric)
    accs = (record.get('history') or {}).get('test_acc') or []
    if max(epochs) > len(accs):
        raise ValueError(f'run {record.get("row")!r} seed {record.get("seed")}: its history has '
                         f'{len(accs)} epochs, the metric needs epoch {max(epochs)}')
    return max(accs[e - 1] for e in epochs)


def _grid(metric):
    epochs = metric.get('best_of_epochs') if isinstance(metric, dict) and len(metric) == 1 else None
    if not epochs or not all(isinstance(e, int) and e >= 1 for e in epochs):
        raise ValueError(f"metric must be 'test_acc', 'best_test_acc' or {{'best_of_epochs': [epochs >= 1]}}, "
                         f'got {metric!r}')
    return epochs


def diverged(record):
    loss = record.get('train_loss')
    return record.get('status') == 'diverged' or loss is None or not math.isfinite(loss)


def at_chance(record):
    acc = record.get('test_acc')
    return acc is not None and acc <= CHANCE


def failed(record, kind):
    """'nan': the loss stopped being finite. 'chance': the run ended at chance, diverged or not (a
    diverged net guesses too, and a report that printed only 0.1 cannot tell the two apart)."""
    if kind not in ('nan', 'chance'):
        raise ValueError(f"failure kind must be 'nan' or 'chance', got {kind!r}")
    return diverged(record) or (kind == 'chance' and at_chance(record))


# ------------------------------------------------------------------ one row
@dataclass(frozen=True)
class RowVerdict:
    row: str
    status: str            # reproduced | consistent | not reproduced | open | not yet run | measured
    why: str
    n: int = 0
    trained: int = 0       # the seeds that neither diverged nor ended at chance: the stats below are theirs
    mean: float = None
    std: float = None
    low: float = None
    high: float = None
    diverged_epochs: tuple = ()   # the epoch each diverged seed stopped in
    at_chance: int = 0            # seeds at chance that did not diverge
    failures: int = None   # seeds failing the reported way (failure rows), or failing at all (others, when any)
    rate_ci: tuple = None  # 95 % Clopper-Pearson interval of failures / n
    first_date: str = None  # date of the row's first stored run
    wanted: int = None     # seeds at which an open row could be judged (None: judged, or at MAX_SEEDS)


def judge_row(spec, records):
    """The verdict of a row on its stored runs."""
    _check_spec(spec)
    _check_records(records, spec['row'])
    return _judge(spec, records)


def _check_records(records, row):
    """The runs of one row (`row`, or any one row when None), each seed once."""
    rows = {r.get('row') for r in records}
    if len(rows) > 1 or (records and row is not None and rows != {row}):
        raise ValueError(f'runs of several rows were passed as one row: {sorted(map(str, rows))}')
    if len({r.get('seed') for r in records}) != len(records):
        raise ValueError(f'row {rows.pop()!r}: a seed is stored twice')


def _judge(spec, records):
    n, kind, reported = len(records), spec['failure'], spec['reported']
    if not n:
        return RowVerdict(spec['row'], 'not yet run', 'no stored run', wanted=MIN_SEEDS)
    trained = [r for r in records if not failed(r, 'chance')]
    values = [metric_value(r, spec['metric']) for r in trained]
    k = sum(failed(r, kind or 'chance') for r in records)
    stats = dict(
        n=n, trained=len(trained), diverged_epochs=tuple(r.get('epochs') for r in records if diverged(r)),
        at_chance=sum(at_chance(r) and not diverged(r) for r in records),
        first_date=min(str(r.get('date')) for r in records),
        failures=k if kind or k else None,
        rate_ci=tuple(binomtest(k, n).proportion_ci(0.95, 'exact')) if kind or k else None,
        **({'mean': statistics.fmean(values), 'low': min(values), 'high': max(values)} if values else {}),
        std=statistics.stdev(values) if len(values) > 1 else None)
    if reported is None:
        return RowVerdict(spec['row'], 'measured', 'no reported number', **stats)
    status, why, wanted = (_judge_failure if kind else _judge_number)(reported, n, k, values)
    wanted = min(wanted, MAX_SEEDS) if wanted and n < MAX_SEEDS else None
    return RowVerdict(spec['row'], status, why, wanted=wanted, **stats)


def _judge_number(reported, n, k, values):
    if n >= MIN_SEEDS and not values:
        return 'not reproduced', f'all {n} seeds fail where the report trained', None
    if len(values) < MIN_SEEDS:
        return 'open', f'{len(values)} of {n} seeds trained ({MIN_SEEDS} needed)', n + MIN_SEEDS - len(values)
    off = (statistics.fmean(values) - reported) * 100
    if abs(off) <= TOLERANCE * 100 + 1e-9:  # 'within' includes 1.5 itself, which floats may overshoot
        return 'reproduced', f'mean within {TOLERANCE * 100:.1f} points ({off:+.1f})', None
    if min(values) <= reported <= max(values):
        return 'reproduced', f'inside min..max (mean {off:+.1f} points)', None
    return 'not reproduced', f'mean off by {off:+.1f} points, outside min..max', None


def _judge_failure(reported, n, k, values):
    if n < MIN_SEEDS:
        return 'open', f'{k} of {n} fail ({MIN_SEEDS} seeds needed)', MIN_SEEDS
    if 2 * k >= n:
        return 'reproduced', f'{k} of {n} fail', None
    if k:
        return 'consistent', f'{k} of {n} fail (fewer than half)', None
    if n < NONE_FAIL_SEEDS:
        return 'open', f'none of {n} fail ({NONE_FAIL_SEEDS} seeds needed)', NONE_FAIL_SEEDS
    return 'not reproduced', f'none of {n} fail', None


def _check_spec(spec):
    missing = {'row', 'reported', 'failure', 'metric'} - set(spec)
    if missing:
        raise ValueError(f'row spec lacks {sorted(missing)}')
    if spec['failure'] not in (None, 'nan', 'chance'):
        raise ValueError(f"row {spec['row']!r}: failure must be None, 'nan' or 'chance', got {spec['failure']!r}")
    if spec['reported'] is not None and not 0 <= spec['reported'] <= 1:
        raise ValueError(f"row {spec['row']!r}: reported must be an accuracy in 0..1, got {spec['reported']!r}")
    if spec['metric'] not in ('test_acc', 'best_test_acc'):
        _grid(spec['metric'])
    seeds = spec.get('seeds')
    if seeds is not None and not (isinstance(seeds, int) and MIN_SEEDS <= seeds <= MAX_SEEDS):
        raise ValueError(f"row {spec['row']!r}: seeds must be {MIN_SEEDS}..{MAX_SEEDS} or None, got {seeds!r}")


def seeds_note(spec, records):
    """'3 declared, 10 run' when more seeds were stored than the row declared (MIN_SEEDS by default)."""
    declared = spec.get('seeds') or MIN_SEEDS
    return f'{declared} declared, {len(records)} run' if len(records) > declared else None


# ------------------------------------------------------------------ readings
@dataclass(frozen=True)
class Fit:
    status: str           # fits | does not fit | consistent | open
    distance: float       # |reported - mean of the reading's trained seeds|; for a reported failure, how
                          # far the failing rate is below half; None when there is nothing to measure
    verdict: RowVerdict   # the rule applied to the reading's runs with the target's number


def judge_reading(target_spec, reading_records):
    """Whether a reading fits a row: the row's reported number judged on the reading's runs."""
    _check_spec(target_spec)
    _check_records(reading_records, None)
    verdict = _judge(target_spec, reading_records)
    status = {'reproduced': 'fits', 'not reproduced': 'does not fit', 'consistent': 'consistent'}.get(
        verdict.status, 'open')
    if target_spec['failure']:
        distance = max(0.0, 0.5 - verdict.failures / verdict.n) if verdict.n else None
    else:
        distance = abs(target_spec['reported'] - verdict.mean) if verdict.mean is not None else None
    return Fit(status, distance, verdict)


@dataclass(frozen=True)
class ReadingOutcome:
    row: str
    fit: Fit
    declared: dict        # {'commit', 'date'} or None
    post_hoc: bool


@dataclass(frozen=True)
class Explanation:
    status: str           # explained | consistent with several | unexplained | open
    by: tuple = ()        # the reading that explains the row, or the readings it is consistent with
    closest: str = None   # unexplained: the reading nearest the reported number
    distance: float = None
    readings: tuple = ()


def explain(target_spec, target_verdict, readings):
    """The explanation of a row that does not reproduce; readings: [(reading_spec, Fit), ...].

    Our reading of SPEC where it is silent: two fits make the row consistent with several whatever an
    open rival (or the row as written, still open) later shows; a fit beside a 'consistent' rival (a
    failure both show) is consistent with several, not explained, since the rival is not a 'does not
    fit'; a row whose own verdict is open has its explanation open too."""
    if target_verdict.status in ('reproduced', 'measured'):
        return None
    if any(spec['row'] == target_spec['row'] for spec, _ in readings):
        raise ValueError(f"row {target_spec['row']!r} is listed as a reading of itself")
    outcomes = tuple(ReadingOutcome(spec['row'], fit, spec.get('declared'),
                                    _post_hoc(spec.get('declared'), target_verdict.first_date))
                     for spec, fit in readings)
    by_status = {s: tuple(o.row for o in outcomes if o.fit.status == s)
                 for s in ('fits', 'consistent', 'open')}
    fits, rivals = by_status['fits'], by_status['consistent']
    if len(fits) >= 2:
        return Explanation('consistent with several', fits + rivals, readings=outcomes)
    if by_status['open'] or target_verdict.status in ('open', 'not yet run'):
        return Explanation('open', readings=outcomes)
    if fits:
        return Explanation('explained' if not rivals else 'consistent with several', fits + rivals,
                           readings=outcomes)
    measured = [o for o in outcomes if o.fit.distance is not None]
    if not measured:
        return Explanation('unexplained', readings=outcomes)
    closest = min(measured, key=lambda o: o.fit.distance)
    return Explanation('unexplained', closest=closest.row, distance=closest.fit.distance, readings=outcomes)


def _post_hoc(declared, first_result):
    """After the row's first stored result, or unknown. A declared date without a time is after a
    result of the same day (it cannot show it came first)."""
    if not declared or not declared.get('date'):
        return True
    if first_result is None:
        return False
    when, result = _moment(declared['date']), _moment(first_result)
    if len(declared['date']) == 10:
        return when.date() >= result.date()
    return when > result


def _moment(text):
    """An ISO date or time as a naive UTC datetime (stored runs carry naive times, taken as UTC)."""
    moment = datetime.datetime.fromisoformat(text)
    return moment.astimezone(datetime.timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


# ------------------------------------------------------------------ one table
@dataclass(frozen=True)
class SignTest:
    below: int            # rows whose reported number is below our mean
    above: int
    ties: int
    p: float              # two-sided exact binomial p of below vs above (ties dropped)
    median_offset: float  # median of reported - ours, in points


def sign_test(pairs):
    """The sign test of one table's (reported, our mean) pairs."""
    pairs = list(pairs)
    if not pairs or any(v is None for pair in pairs for v in pair):
        raise ValueError('sign_test needs (reported, our mean) pairs, none of them None')
    offsets = [reported - ours for reported, ours in pairs]
    below, above = sum(o < 0 for o in offsets), sum(o > 0 for o in offsets)
    p = binomtest(below, below + above).pvalue if below + above else 1.0
    return SignTest(below, above, len(offsets) - below - above, p, statistics.median(offsets) * 100)
