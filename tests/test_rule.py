"""The audit's rule (audit/rule.py): each outcome of SPEC's verdict and explanation rule."""
import math

import pytest

from audit import rule
from audit.rule import explain, judge_reading, judge_row, metric_value, seeds_note, sign_test

NAN = float('nan')


def run(row, seed, acc, *, loss=0.3, status='finished', epochs=3, date='2026-12-01T12:00:00', **extra):
    return {'row': row, 'seed': seed, 'status': status, 'epochs': epochs, 'train_loss': loss,
            'train_acc': 0.9, 'test_acc': acc, 'date': date, **extra}


def runs(row, *accs, **extra):
    return [run(row, seed, acc, **extra) for seed, acc in enumerate(accs)]


def nan_run(row, seed, epochs=7):
    return run(row, seed, 0.1, loss=NAN, status='diverged', epochs=epochs)


def spec(row='base', reported=0.86, failure=None, metric='test_acc', seeds=None, declared=None):
    return {'row': row, 'reported': reported, 'failure': failure, 'metric': metric, 'seeds': seeds,
            'explains': [], 'declared': declared}


# ------------------------------------------------------------------ a reported number
def test_reproduced_by_the_mean_within_tolerance():
    verdict = judge_row(spec(reported=0.86), runs('base', 0.87, 0.875, 0.87))
    assert (verdict.status, verdict.n, verdict.trained) == ('reproduced', 3, 3)
    assert verdict.mean == pytest.approx(0.871667)
    assert verdict.why.startswith('mean within 1.5 points')
    edge = judge_row(spec(reported=0.86), runs('base', 0.875, 0.875, 0.875))  # 1.5 points, as floats
    assert edge.status == 'reproduced'


def test_reproduced_by_min_max_when_the_mean_is_off():
    verdict = judge_row(spec(reported=0.83), runs('base', 0.82, 0.86, 0.87))
    assert abs(verdict.mean - 0.83) > rule.TOLERANCE
    assert (verdict.status, verdict.low, verdict.high) == ('reproduced', 0.82, 0.87)
    assert verdict.why.startswith('inside min..max')


def test_not_reproduced_outside_tolerance_and_range():
    verdict = judge_row(spec(reported=0.80), runs('base', 0.82, 0.83, 0.84))
    assert verdict.status == 'not reproduced'
    assert verdict.why == 'mean off by +3.0 points, outside min..max'


def test_open_with_fewer_than_three_seeds_says_what_was_measured():
    verdict = judge_row(spec(reported=0.86), runs('base', 0.86, 0.86))
    assert (verdict.status, verdict.n, verdict.mean, verdict.wanted) == ('open', 2, 0.86, 3)


def test_failed_seeds_never_widen_min_max_nor_enter_the_mean():
    records = runs('base', 0.85, 0.86, 0.87) + [nan_run('base', 3, epochs=41)]
    verdict = judge_row(spec(reported=0.15), records)
    assert verdict.status == 'not reproduced'
    assert (verdict.low, verdict.mean, verdict.trained, verdict.n) == (0.85, pytest.approx(0.86), 3, 4)
    assert (verdict.diverged_epochs, verdict.at_chance, verdict.failures) == ((41,), 0, 1)


def test_three_seeds_with_fewer_than_three_trained_are_open_and_ask_for_seeds():
    records = runs('base', 0.86, 0.86) + [run('base', 2, 0.1)]  # one at chance, loss finite
    verdict = judge_row(spec(reported=0.86), records)
    assert (verdict.status, verdict.at_chance, verdict.diverged_epochs, verdict.wanted) == ('open', 1, (), 4)


def test_every_seed_failing_where_the_report_trained_is_not_reproduced():
    verdict = judge_row(spec(reported=0.86), [nan_run('base', s) for s in range(3)])
    assert (verdict.status, verdict.mean, verdict.trained) == ('not reproduced', None, 0)


def test_not_yet_run_and_measured():
    assert judge_row(spec(), []).status == 'not yet run'
    verdict = judge_row(spec(reported=None), runs('base', 0.8, 0.9))
    assert (verdict.status, verdict.mean) == ('measured', pytest.approx(0.85))


# ------------------------------------------------------------------ a reported failure
def test_failure_reproduced_when_at_least_half_of_three_or_more_fail():
    records = [nan_run('lr', 0), nan_run('lr', 1)] + [run('lr', s, 0.85) for s in (2, 3)]
    verdict = judge_row(spec('lr', 0.1, 'nan'), records)
    assert (verdict.status, verdict.failures, verdict.n) == ('reproduced', 2, 4)


def test_failure_consistent_when_fewer_than_half_fail_with_the_rate_interval():
    records = [nan_run('lr', 0), nan_run('lr', 1)] + [run('lr', s, 0.85) for s in range(2, 8)]
    verdict = judge_row(spec('lr', 0.1, 'nan'), records)
    assert (verdict.status, verdict.failures) == ('consistent', 2)
    assert verdict.rate_ci == pytest.approx((0.0319, 0.6509), abs=1e-4)  # Clopper-Pearson, 2 of 8


def test_failure_not_reproduced_when_none_of_five_fail_and_open_with_four():
    five = runs('lr', *[0.85] * 5)
    assert judge_row(spec('lr', 0.1, 'nan'), five).status == 'not reproduced'
    verdict = judge_row(spec('lr', 0.1, 'nan'), five[:4])
    assert (verdict.status, verdict.wanted) == ('open', 5)


def test_a_chance_failure_counts_runs_at_chance_and_a_nan_failure_does_not():
    records = runs('s1', 0.1, 0.1, 0.85)  # loss finite, accuracy at chance
    assert judge_row(spec('s1', 0.1, 'chance'), records).status == 'reproduced'
    assert judge_row(spec('s1', 0.1, 'nan'), records).status == 'open'  # none of 3 diverged


# ------------------------------------------------------------------ readings
def test_reading_fits_does_not_fit_or_is_open():
    target = spec('cell', 0.79)
    fit = judge_reading(target, runs('other', 0.785, 0.79, 0.80))
    assert (fit.status, fit.distance) == ('fits', pytest.approx(0.0017, abs=1e-4))
    miss = judge_reading(target, runs('far', 0.83, 0.84, 0.85))
    assert (miss.status, miss.distance) == ('does not fit', pytest.approx(0.05))
    assert judge_reading(target, runs('short', 0.79, 0.79)).status == 'open'


def test_reading_of_a_failure_failing_below_half_is_consistent_not_a_fit():
    records = [nan_run('tf32', 0)] + [run('tf32', s, 0.86) for s in (1, 2, 3)]
    fit = judge_reading(spec('lr', 0.1, 'nan'), records)
    assert (fit.status, fit.distance) == ('consistent', 0.25)


def explained_by(readings, target=None, verdict_status='not reproduced'):
    target = target or spec('cell', 0.79)
    return explain(target, rule.RowVerdict(target['row'], verdict_status, '', first_date='2026-12-01T12:00:00'),
                   readings)


def test_explained_when_exactly_one_fits_and_every_other_does_not():
    target = spec('cell', 0.79)
    readings = [(spec('a'), judge_reading(target, runs('a', 0.79, 0.79, 0.80))),
                (spec('b'), judge_reading(target, runs('b', 0.84, 0.84, 0.84)))]
    explanation = explained_by(readings, target)
    assert (explanation.status, explanation.by) == ('explained', ('a',))


def test_consistent_with_several_when_two_fit():
    target = spec('cell', 0.79)
    readings = [(spec(r), judge_reading(target, runs(r, 0.79, 0.79, 0.80))) for r in ('a', 'b')]
    readings.append((spec('c'), judge_reading(target, runs('c', 0.84, 0.84, 0.84))))
    explanation = explained_by(readings, target)
    assert (explanation.status, explanation.by) == ('consistent with several', ('a', 'b'))


def test_a_failure_that_one_reading_fits_and_another_shows_at_a_lower_rate_is_not_explained():
    target = spec('lr', 0.1, 'nan')
    fits = judge_reading(target, [nan_run('tf32', 0), nan_run('tf32', 1)] + [run('tf32', s, 0.86) for s in (2, 3)])
    rival = judge_reading(target, [nan_run('fp32', 0)] + [run('fp32', s, 0.86) for s in (1, 2, 3)])
    assert (fits.status, rival.status) == ('fits', 'consistent')
    both = explained_by([(spec('tf32'), fits), (spec('fp32'), rival)], target, 'consistent')
    assert (both.status, both.by) == ('consistent with several', ('tf32', 'fp32'))
    alone = explained_by([(spec('fp32'), rival)], target, 'consistent')
    assert (alone.status, alone.closest, alone.distance) == ('unexplained', 'fp32', 0.25)


def test_unexplained_names_the_closest_reading_and_its_distance():
    target = spec('cell', 0.79)
    readings = [(spec('a'), judge_reading(target, runs('a', 0.84, 0.84, 0.84))),
                (spec('b'), judge_reading(target, runs('b', 0.82, 0.82, 0.82)))]
    explanation = explained_by(readings, target)
    assert (explanation.status, explanation.closest) == ('unexplained', 'b')
    assert explanation.distance == pytest.approx(0.03)


def test_open_while_a_rival_reading_is_still_open():
    target = spec('cell', 0.79)
    readings = [(spec('a'), judge_reading(target, runs('a', 0.79, 0.79, 0.80))),
                (spec('b'), judge_reading(target, runs('b', 0.84)))]
    assert explained_by(readings, target).status == 'open'


def test_nothing_to_explain_when_the_row_reproduces_and_no_verdict_while_it_is_open():
    target = spec('cell', 0.79)
    readings = [(spec('a'), judge_reading(target, runs('a', 0.79, 0.79, 0.80)))]
    assert explained_by(readings, target, 'reproduced') is None
    assert explained_by(readings, target, 'open').status == 'open'


def test_post_hoc_when_declared_after_the_first_result_or_unknown():
    target = spec('cell', 0.79)
    fit = judge_reading(target, runs('a', 0.79, 0.79, 0.80))
    declared = {'before': {'commit': 'abc1234', 'date': '2026-11-30T09:00:00+00:00'},
                'after': {'commit': 'def5678', 'date': '2026-12-02T09:00:00+00:00'},
                'same day': {'commit': 'aaa0000', 'date': '2026-12-01'},
                'unknown': None}
    readings = [(spec(name, declared=when), fit) for name, when in declared.items()]
    outcomes = explained_by(readings, target).readings
    assert {o.row: o.post_hoc for o in outcomes} == {'before': False, 'after': True, 'same day': True,
                                                      'unknown': True}


def test_a_row_cannot_be_a_reading_of_itself():
    target = spec('cell', 0.79)
    with pytest.raises(ValueError, match='reading of itself'):
        explained_by([(target, judge_reading(target, runs('cell', 0.79, 0.79, 0.79)))], target)


# ------------------------------------------------------------------ seeds, tables, metrics, input
def test_seeds_note_only_when_more_seeds_than_declared_were_stored():
    assert seeds_note(spec(), runs('base', *[0.8] * 10)) == '3 declared, 10 run'
    assert seeds_note(spec(seeds=10), runs('base', *[0.8] * 10)) is None
    assert seeds_note(spec(), runs('base', 0.8, 0.8, 0.8)) is None


def test_sign_test_eight_of_eight_below_and_the_median_offset():
    pairs = [(0.80 + i / 100, 0.82 + i / 100 + i / 1000) for i in range(8)]
    result = sign_test(pairs)
    assert (result.below, result.above, result.ties) == (8, 0, 0)
    assert result.p == pytest.approx(0.0078125)
    assert result.median_offset == pytest.approx(-2.35)
    even = sign_test([(0.8, 0.7), (0.7, 0.8), (0.5, 0.5)])
    assert (even.below, even.above, even.ties, even.p, even.median_offset) == (1, 1, 1, 1.0, 0.0)


def test_best_of_epochs_reads_the_history():
    record = run('4', 0, 0.80, history={'test_acc': [0.1 * e / 20 + 0.7 for e in range(1, 16)]})
    record['history']['test_acc'][9] = 0.9  # epoch 10 is the best of 5/10/15
    assert metric_value(record, {'best_of_epochs': [5, 10, 15]}) == 0.9
    assert metric_value(record, {'best_of_epochs': [5]}) == pytest.approx(0.725)
    with pytest.raises(ValueError, match='needs epoch 20'):
        metric_value(record, {'best_of_epochs': [20]})
    verdict = judge_row(spec('4', 0.9, metric={'best_of_epochs': [5, 10, 15]}),
                        [dict(record, seed=s) for s in range(3)])
    assert (verdict.status, verdict.mean) == ('reproduced', 0.9)


@pytest.mark.parametrize('bad', [{'metric': 'test_acc_5_10_15'}, {'failure': 'inf'}, {'reported': 86.0},
                                 {'seeds': 11}])
def test_bad_specs_get_one_clear_error(bad):
    with pytest.raises(ValueError):
        judge_row(dict(spec(), **bad), runs('base', 0.86, 0.86, 0.86))


def test_bad_records_get_one_clear_error():
    with pytest.raises(ValueError, match='several rows'):
        judge_row(spec(), runs('other', 0.86, 0.86, 0.86))
    with pytest.raises(ValueError, match='stored twice'):
        judge_row(spec(), [run('base', 0, 0.86), run('base', 0, 0.86)])
    with pytest.raises(ValueError):
        sign_test([(0.86, None)])


def test_the_rule_text_carries_the_constants():
    assert '1.5 points' in rule.RULE_TEXT and f'{rule.MAX_SEEDS}' in rule.RULE_TEXT
    assert math.isclose(rule.TOLERANCE, 0.015) and rule.CHANCE == 0.11
