"""The run store, the Lab that notebooks use, and the verdict rule."""
import json
import warnings

import pytest
import torch
from torch import nn

import my_utils as mu
from my_utils.repro import Lab, row, settings
from my_utils.repro.store import RunStore, StoreWarning
from my_utils.repro.verdict import outcome, verdict


def record(row_id, seed, acc=0.86, **extra):
    return {'row': row_id, 'seed': seed, 'status': 'finished', 'epochs': 3, 'train_loss': 0.3,
            'train_acc': 0.9, 'test_acc': acc, 'date': '2026-12-02T00:00:00', 'wall_s': 1.0, **extra}


def test_one_damaged_run_costs_that_run_alone_and_names_its_file(tmp_path):
    store = RunStore(tmp_path)
    for seed in range(3):
        store.put(record('base', seed))
    store.put(record('other', 0))
    damaged = store.path('base', 1)
    damaged.write_text(damaged.read_text()[:25])  # truncated, as by a full disk
    store.path('other', 0).unlink()                # deleted
    with pytest.warns(StoreWarning, match=str(damaged)):
        left = store.records()
    assert [(r['row'], r['seed']) for r in left] == [('base', 0), ('base', 2)]
    assert damaged.with_suffix('.damaged').exists()  # kept, never deleted
    store.path('base', 0).write_text('[1, 2]')       # valid JSON, not a run
    with pytest.warns(StoreWarning, match='not a stored run'):
        assert store.get('base', 0) is None


def test_writes_are_atomic_and_markers_exclusive(tmp_path):
    store = RunStore(tmp_path)
    store.put(record('a b/c', 0))
    assert [p.name for p in tmp_path.iterdir()] == ['a_b_c__seed0.json']
    marker = store.claim('a b/c', 1)
    assert marker and store.claim('a b/c', 1) is None
    marker.unlink()
    assert store.claim('a b/c', 1)


def tiny_train(lr=0.5, epochs=2):
    X = torch.randn(64, 4)
    y = (X[:, 0] > 0).long()
    it = mu.load_array((X, y), 16)
    return mu.train_ch6(nn.Linear(4, 2), it, it, epochs, lr, 'cpu', animate=False, verbose=False)


def full_lab(tmp_path, monkeypatch, **changes):
    s = settings.Settings(**{"quick": False, "seeds": 2, "runs": str(tmp_path), **changes})
    monkeypatch.setenv(settings.VARIABLE, s.to_env()[settings.VARIABLE])
    return Lab('01_tiny')


ROWS = [row('base', 'tiny', 0.9), row('fast', 'lr 2', 0.9, lr=2.0)]


def test_each_run_is_trained_once_and_records_where_it_came_from(tmp_path, monkeypatch, capsys):
    lab = full_lab(tmp_path, monkeypatch)
    lab.run_rows(ROWS, tiny_train, {'model': 'linear'})
    runs = lab.store.records()
    assert [(r['row'], r['seed']) for r in runs] == [('base', 0), ('base', 1), ('fast', 0), ('fast', 1)]
    for key in ('commit', 'fingerprint', 'hardware', 'torch', 'torchvision', 'numpy', 'data_sha256',
                'setup', 'history', 'date', 'command'):
        assert key in runs[0]
    assert runs[0]['fingerprint'] != runs[2]['fingerprint']  # another lr, another set-up
    assert runs[0]['setup'] == {'model': 'linear', 'lr': 0.5, 'epochs': 2}
    capsys.readouterr()
    Lab('01_tiny').run_rows(ROWS, tiny_train, {'model': 'linear'})  # a restart trains nothing
    out = capsys.readouterr().out
    assert '---' not in out and 'stored run of' in out and 'loss ' in out


def test_a_run_made_with_another_set_up_is_stale_kept_aside_and_trained_again(tmp_path, monkeypatch):
    lab = full_lab(tmp_path, monkeypatch, seeds=1)
    lab.run_rows(ROWS[:1], tiny_train, {'model': 'linear'})
    old = lab.store.get('base', 0)
    lab = full_lab(tmp_path, monkeypatch, seeds=1, stored_only=True)
    lab.run_rows(ROWS[:1], tiny_train, {'model': 'linear, wider'})
    assert lab.records('base') == []  # the stale run is not counted
    assert lab.verdict('base')[0] == 'not yet run'
    lab = full_lab(tmp_path, monkeypatch, seeds=1)
    lab.run_rows(ROWS[:1], tiny_train, {'model': 'linear, wider'})
    assert lab.store.get('base', 0)['fingerprint'] != old['fingerprint']
    kept = list(tmp_path.glob('01_tiny/base__seed0.stale-*.json.keep'))
    assert len(kept) == 1 and json.loads(kept[0].read_text())['date'] == old['date']


def test_a_keyword_added_to_train_at_its_default_keeps_the_stored_runs_current(tmp_path, monkeypatch):
    lab = full_lab(tmp_path, monkeypatch, seeds=1)
    lab.run_rows(ROWS, tiny_train, {'model': 'linear'})
    stored = {r['row']: r['date'] for r in lab.store.records()}

    def grown_train(lr=0.5, epochs=2, warm_start=False):  # a later notebook's train
        return tiny_train(lr, epochs)
    grown = ROWS + [row('warm', 'warm start', None, warm_start=True)]
    lab = full_lab(tmp_path, monkeypatch, seeds=1, stored_only=True)
    lab.run_rows(grown, grown_train, {'model': 'linear'})
    assert [len(lab.records(r)) for r in ('base', 'fast', 'warm')] == [1, 1, 0]
    # Set to something else, the same keyword is another set-up: the old runs are stale.
    lab = full_lab(tmp_path, monkeypatch, seeds=1, stored_only=True)
    lab.run_rows([row('base', 'tiny', 0.9, warm_start=True)], grown_train, {'model': 'linear'})
    assert lab.records('base') == []
    lab = full_lab(tmp_path, monkeypatch, seeds=1)
    lab.run_rows(grown[:2], grown_train, {'model': 'linear'})  # nothing is trained again
    assert {r['row']: r['date'] for r in lab.store.records()} == stored


def test_an_interrupted_run_stops_the_loop_and_keeps_its_epochs(tmp_path, monkeypatch):
    lab = full_lab(tmp_path, monkeypatch)
    calls = []

    def interrupted(lr=0.5):
        calls.append(lr)
        history = tiny_train(epochs=1)
        err = KeyboardInterrupt()
        err.history = history
        raise err

    with pytest.raises(KeyboardInterrupt):
        lab.run_rows(ROWS, interrupted, {})
    assert calls == [0.5]  # the loop did not go on to the next run
    assert lab.store.records() == []
    assert (tmp_path / '01_tiny' / 'base__seed0.interrupted.json.keep').exists()


def test_a_notebook_opened_by_hand_is_quick_and_writes_nothing(monkeypatch):
    monkeypatch.delenv(settings.VARIABLE, raising=False)
    lab = Lab('01_tiny')
    assert lab.quick and lab.store.folder is None and 'quick' in repr(lab)
    assert Lab('01_tiny', quick=False).quick is False


def test_verdicts_follow_the_rule_and_say_when_seeds_are_missing():
    runs = [record('r', s, a) for s, a in enumerate((0.86, 0.87, 0.85))]
    assert verdict(0.865, runs) == ('reproduced', 'mean within 1.5 points on 3 seeds')
    assert verdict(0.865, runs[:1]) == ('open', 'mean within 1.5 points on 1 seed (3 needed)')
    assert verdict(0.90, runs) == ('not reproduced', 'mean -4.0 points on 3 seeds')
    assert verdict(0.852, [record('r', 0, 0.83), record('r', 1, 0.86), record('r', 2, 0.83)])[0] == 'reproduced'
    nan = [record('r', s, 0.1, train_loss=float('nan'), status='diverged') for s in range(3)]
    assert verdict(0.1, nan, failure='nan')[0] == 'reproduced'
    assert verdict(0.1, nan[:2], failure='nan')[0] == 'open'
    assert verdict(0.1, runs, failure='nan') == ('not reproduced', '3/3 seeds trained (mean 0.8600), where the report failed')
    assert 'diverged (loss nan) in epoch 3' in verdict(0.86, nan)[1]
    stuck = record('r', 1, 0.1, train_loss=2.33)
    mixed = [runs[0], stuck, nan[2]]
    assert verdict(0.86, [nan[0], stuck, nan[2]]) == (
        'not reproduced', '1/3 stayed at chance without diverging, 2/3 diverged (loss nan) in epoch 3, 3, '
        'where the report trained')
    assert verdict(0.86, [stuck] * 3) == (
        'not reproduced', 'stayed at chance without diverging on 3 seeds, where the report trained')
    assert verdict(0.1, mixed, failure='nan') == (
        'not reproduced', '1/3 seeds trained (mean 0.8600), 1/3 stayed at chance without diverging, '
        '1/3 diverged (loss nan) in epoch 3, where the report failed')
    # A trained report inside a min..max that a failed seed stretches down to chance.
    assert verdict(0.80, [runs[0], runs[1], nan[2]]) == (
        'reproduced', 'the report lies inside our min..max on 3 seeds; 2/3 seeds trained '
        '(mean 0.8650), 1/3 diverged (loss nan) in epoch 3')
    assert verdict(0.86, [runs[0], nan[2]])[1].endswith('1/2 diverged (loss nan) in epoch 3 (3 needed)')


def test_a_hypothesis_is_confirmed_refuted_or_open_by_its_rows():
    target = {'row': 't', 'reported': 0.85, 'failure': None}
    rows = {'h': [record('h', s, 0.85) for s in range(3)], 'k': [record('k', s, 0.80) for s in range(3)],
            'one': [record('one', 0, 0.80)]}
    assert outcome(target, [{'row': 'h'}], rows.get)[0] == 'confirmed'
    assert outcome(target, [{'row': 'k'}], rows.get)[0] == 'refuted'
    assert outcome(target, [{'row': 'k'}, {'row': 'one'}], rows.get)[0] == 'open'
    failing = {'row': 'f', 'reported': 0.1, 'failure': 'nan'}
    seeds = [record('f', s, 0.1, status='diverged', train_loss=float('nan')) for s in range(2)]
    seeds += [record('f', s, 0.87) for s in range(2, 5)]
    assert outcome(failing, [{'row': 'f', 'test': 'some seeds fail'}], lambda r: seeds)[0] == 'confirmed'
    assert outcome(failing, [{'row': 'f', 'test': 'some seeds fail'}], lambda r: seeds[2:])[0] == 'open'
    # A hypothesis row's seeds can test it too (02's lr 0.9 in TF32); fewer than 5 leave it open.
    assert outcome(failing, [{'row': 'g', 'test': 'some seeds fail'}], lambda r: seeds[1:4]) == (
        'open', '`g`: 1/3 seeds fail (5 needed)')
    # None of 5 seeds failing rules out only a failure on 45 % of seeds or more, and says so.
    trained = [record('f', s, 0.87) for s in range(5)]
    assert outcome(failing, [{'row': 'f', 'test': 'some seeds fail'}], lambda r: trained) == (
        'refuted', '`f`: 0/5 seeds fail (so at most 45% of seeds fail, at 95% confidence)')


def test_a_reported_number_inside_the_last_epochs_swing_is_one_noisy_last_epoch():
    def swinging(seed, low, high):   # 30 epochs: rising, then alternating between low and high
        accs = [0.5 + 0.01 * e for e in range(10)] + [low, high] * 10
        return record('t', seed, accs[-1], history={'test_acc': accs})
    runs = [swinging(s, 0.84 + 0.001 * s, 0.88) for s in range(3)]
    self_test = [{'row': 't', 'test': 'last epochs'}]
    inside = {'row': 't', 'reported': 0.845, 'failure': None}
    word, text = outcome(inside, self_test, lambda r: runs)
    assert word == 'confirmed'
    assert text == '`t`: 0.8450 lies inside the 0.8400..0.8800 of its 3 seeds over their last 20 epochs'
    assert outcome(dict(inside, reported=0.83), self_test, lambda r: runs)[0] == 'refuted'
    # The rising epochs before the last 20 do not count, nor does a run that diverged.
    assert outcome(dict(inside, reported=0.55), self_test, lambda r: runs)[0] == 'refuted'
    nan = record('t', 3, 0.1, status='diverged', train_loss=float('nan'), history={'test_acc': [0.1] * 30})
    assert outcome(dict(inside, reported=0.2), self_test, lambda r: runs + [nan]) == (
        'refuted', '`t`: 0.2000 lies outside the 0.8400..0.8800 of the 3 of its 4 seeds that trained, '
        'over their last 20 epochs')
    assert outcome(inside, self_test, lambda r: runs[:2])[0] == 'open'
    # The band needs 3 seeds that trained, however many failed beside them.
    assert outcome(inside, self_test, lambda r: runs[:2] + [nan, nan]) == (
        'open', '`t`: 0.8450 lies inside the 0.8400..0.8800 of the 2 of its 4 seeds that trained, '
        'over their last 20 epochs (3 needed)')
    # A reading whose runs all failed has no band: the text says so, and the claim is refuted.
    word, text = outcome(inside, self_test, lambda r: [nan] * 3)
    assert (word, text) == ('refuted', '`t`: no run of its 3 seeds trained, so it has no last epochs to compare with')


def test_a_reported_number_is_one_draw_of_the_seed_spread_only_inside_ten_seeds_min_max():
    target = {'row': 't', 'reported': 0.79, 'failure': None}
    spread = [{'row': 't', 'test': 'seed spread'}]
    runs = [record('t', s, 0.80 + 0.002 * s) for s in range(10)]
    assert outcome(target, spread, lambda r: runs) == (
        'refuted', '`t`: 0.7900 lies below the 0.8000..0.8180 of its 10 seeds (3.1 standard deviations below '
                   'their mean); a run of the same spread lands below all of them one time in 11')
    assert outcome(dict(target, reported=0.81), spread, lambda r: runs)[0] == 'confirmed'
    assert outcome(dict(target, reported=0.83), spread, lambda r: runs)[0] == 'refuted'
    # Three seeds are enough for the verdict, not for a claim about the spread.
    assert outcome(target, spread, lambda r: runs[:3]) == (
        'open', '`t`: 0.7900 lies below the 0.8000..0.8040 of its 3 seeds (6.0 standard deviations below their '
                'mean); a run of the same spread lands below all of them one time in 4 (10 needed)')
    # One seed has no spread to measure the distance in.
    assert outcome(target, spread, lambda r: runs[:1])[1] == (
        '`t`: 0.7900 lies below the 0.8000..0.8000 of its 1 seed; a run of the same spread lands below all of '
        'them one time in 2 (10 needed)')
    assert outcome(target, spread, lambda r: [])[0] == 'open'


def test_each_claim_of_a_row_is_judged_on_its_own_rows(tmp_path, monkeypatch):
    lab = full_lab(tmp_path, monkeypatch)
    lab.rows = {r['row']: r for r in [
        row('t', 'target', 0.85),
        row('weak', 'weaker', None, explains='t', claim='too strong'),
        row('flip', 'no flip', None, explains='t', claim='a part was missing'),
        row('bn', 'bn rows', None, explains='t', claim='bn over rows')]}
    for seed in range(3):
        lab.store.put(record('weak', seed, 0.85))
        lab.store.put(record('flip', seed, 0.80))
    lab.store.put(record('bn', 0, 0.80))
    word, text = lab.explanation('t')
    assert word == 'confirmed'
    assert text.startswith('too strong: confirmed (`weak`: mean within 1.5 points on 3 seeds); '
                           'a part was missing: refuted (`flip`: mean -5.0 points on 3 seeds); '
                           'bn over rows: open (`bn`: mean -5.0 points on 1 seed (3 needed))')
    lab.store.path('weak', 0).unlink()
    assert lab.explanation('t')[0] == 'open'  # refuted and open claims leave the row open


def test_a_misspelt_test_kind_is_one_clear_error_when_the_row_is_written():
    with pytest.raises(ValueError, match="row 'h': test must be one of .*'seed spread'.*got \\['seed-spread'\\]"):
        row('h', 'x', None, explains='t', test='seed-spread')
    with pytest.raises(ValueError, match="got \\['last epoch'\\]"):
        row('h', 'x', None, explains='t', claim=['a', 'b'], test={'a': 'last epochs', 'b': 'last epoch'})


def test_a_claim_no_run_here_can_test_is_shown_untested_and_keeps_the_row_open(tmp_path, monkeypatch):
    lab = full_lab(tmp_path, monkeypatch)
    lab.rows = {r['row']: r for r in [
        row('t', 'target', 0.85, untested={'gpu arithmetic': 'needs a GPU'}),
        row('k', 'another reading', None, explains='t', claim='a reading')]}
    for seed in range(3):
        lab.store.put(record('k', seed, 0.80))
    assert lab.explanation('t') == ('open', 'a reading: refuted (`k`: mean -5.0 points on 3 seeds); '
                                            'gpu arithmetic: untested (needs a GPU)')
    lab.rows['k']['explains'] = None  # with no hypothesis row at all, the untested claim still shows
    assert lab.explanation('t') == ('open', 'gpu arithmetic: untested (needs a GPU)')


def test_one_hypothesis_row_can_test_two_claims_each_its_own_way(tmp_path, monkeypatch):
    lab = full_lab(tmp_path, monkeypatch)
    both = ['plain', 'plain, one noisy epoch']
    lab.rows = {r['row']: r for r in [
        row('t', 'target', 0.84), row('u', 'other target', 0.88),
        row('p', 'plain', None, explains=['t', 'u'], claim={'t': both, 'u': 'plain'},
            test={'plain, one noisy epoch': 'last epochs'})]}
    for seed in range(3):  # final 0.87, but 0.83 to 0.88 over the last 20 epochs
        lab.store.put(record('p', seed, 0.87, history={'test_acc': [0.83, 0.88] * 10 + [0.87]}))
    word, text = lab.explanation('t')
    assert (word, text) == ('confirmed', 'plain: refuted (`p`: mean +3.0 points on 3 seeds); '
                            'plain, one noisy epoch: confirmed (`p`: 0.8400 lies inside the '
                            '0.8300..0.8800 of its 3 seeds over their last 20 epochs)')
    assert lab.explanation('u') == ('confirmed', 'plain: confirmed (`p`: mean within 1.5 points on 3 seeds)')


def test_rows_short_of_their_seeds_say_why_what_they_cost_and_how_to_resume(tmp_path, monkeypatch):
    lab = full_lab(tmp_path, monkeypatch)
    lab.rows = {r['row']: r for r in [row('done', 'x', 0.85), row('one', 'y', 0.85),
                                      row('none', 'z', None), row('five', 'w', 0.1, seeds=5)]}
    for seed in range(3):
        lab.store.put(record('done', seed, wall_s=60.0))
        lab.store.put(record('five', seed, wall_s=60.0))
    lab.store.put(record('one', 0, wall_s=1800.0))
    text = str(lab.short_rows())
    assert '| done |' not in text
    assert '| one | 1 | 3 | 30 | 1.0 | `python -m my_utils.repro 01 --rows "one"` |' in text
    assert '| none | 0 | 3 | - | - |' in text and '| five | 3 | 5 | 1 | 0.0 |' in text
    assert text.startswith('Why not yet: CPU time. These 7 runs need about 1.0 CPU hours')
    assert 'more for 1 row(s) never run' in text


def test_a_reported_row_can_test_a_reading_of_another_and_keeps_its_own_verdict(tmp_path, monkeypatch):
    # 04's batch-512 cell is reported and is also the runs of the reading that the batch-256 cell holds
    # a batch-512 run: one set of runs, judged against each row's own reported number.
    lab = full_lab(tmp_path, monkeypatch)
    lab.rows = {r['row']: r for r in [
        row('b256', 'batch 256', 0.79),
        row('b512', 'batch 512', 0.78, explains='b256', claim='the cell holds a batch-512 run')]}
    for seed in range(3):
        lab.store.put(record('b256', seed, 0.82))
        lab.store.put(record('b512', seed, 0.785))
    assert lab.verdict('b256')[0] == 'not reproduced'
    assert lab.verdict('b512') == ('reproduced', 'mean within 1.5 points on 3 seeds')
    assert lab.explanation('b256') == ('confirmed', 'the cell holds a batch-512 run: confirmed '
                                                    '(`b512`: mean within 1.5 points on 3 seeds)')
    assert lab.explanation('b512') is None
    table = lab.table()
    assert '| b512 | batch 512 (hypothesis for `b256`) | 0.7800 |' in table
