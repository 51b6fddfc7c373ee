"""One-off: move the runs of the old one-file-per-notebook results (reports/<name>.json) into the
one-file-per-run store, losing none.

    python -m my_utils.repro.migrate 02_fashion_two_mlp_unfold reports/02_fashion_two_mlp_unfold.json \\
        --checked 82d314d

Each run gets the commit that first stored it (from the results file's git history, or
--commit for runs never committed), and the fingerprint of that commit's set-up. The set-up code
of notebooks 01, 02 and 04 (models, hyperparameters, data, training calls) did not change between
the commits that stored these runs and --checked (their code cells were compared line by line;
only the seeds a row runs on and the display of results changed), so that fingerprint is the
current notebook's, read from the manifest its last execution wrote. A run whose row the
notebook no longer has keeps fingerprint None and shows as such in the report.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

from .store import RunStore


def storing_commits(repo, path):
    """{(row, seed, date): commit} for every run that ever appeared in the results file."""
    def git(*args):
        return subprocess.run(['git', '-C', str(repo), *args], capture_output=True, text=True).stdout
    first = {}
    for commit in git('log', '--reverse', '--format=%H', '--', path).split():
        try:
            runs = json.loads(git('show', f'{commit}:{path}')).get('runs', [])
        except json.JSONDecodeError:
            continue
        for run in runs:
            first.setdefault((run['row'], run['seed'], run['date']), commit)
    return first


def migrate(name, old_file, runs_dir, repo, checked, commit=None):
    """Write every run of `old_file` into runs_dir/name; returns how many were written."""
    store = RunStore(Path(runs_dir) / name)
    manifest = json.loads((store.folder / 'manifest.json').read_text())
    fingerprints = {r['row']: (r['fingerprint'], r['setup_values']) for r in manifest['rows']}
    relative = Path(old_file).resolve().relative_to(Path(repo).resolve()).as_posix()
    first = storing_commits(repo, relative)
    written = 0
    for run in json.loads(Path(old_file).read_text())['runs']:
        stored_by = first.get((run['row'], run['seed'], run['date'])) or commit
        fp, setup = fingerprints.get(run['row'], (None, None))
        record = dict(run, commit=stored_by, fingerprint=fp, setup=setup,
                      hardware=f"{run.get('device', 'cpu')} (model not recorded)",
                      command=f'python -m my_utils.reproduce {name[:2]} (the command before this store)',
                      migrated_from=f'{relative} (set-up checked unchanged up to {checked})')
        existing = store.get(run['row'], run['seed'])
        if existing and existing.get('date') == run['date']:
            continue  # migrated already
        if existing:
            print(f'kept the stored {run["row"]} seed {run["seed"]} of {existing["date"]}; '
                  f'the old file\'s run of {run["date"]} goes beside it', file=sys.stderr)
            store.put_aside(record, 'duplicate')
            continue
        store.put(record)
        written += 1
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('name')
    parser.add_argument('old_file')
    parser.add_argument('--runs', default='reports/runs')
    parser.add_argument('--repo', default='.')
    parser.add_argument('--checked', required=True, help='the commit up to which the set-up was compared')
    parser.add_argument('--commit', default=None, help='commit of runs not in the git history')
    args = parser.parse_args(argv)
    n = migrate(args.name, args.old_file, args.runs, args.repo, args.checked, args.commit)
    print(f'{args.name}: {n} runs written to {Path(args.runs) / args.name}')


if __name__ == '__main__':
    main()


def refresh_fingerprints(name, runs_dir='reports/runs'):
    """Give the migrated runs of `name` the fingerprint of their row in the current manifest.

    Only runs with `migrated_from` (whose set-up was checked unchanged, see above) are touched;
    a run whose row is not in the manifest keeps its fingerprint."""
    store = RunStore(Path(runs_dir) / name)
    manifest = json.loads((store.folder / 'manifest.json').read_text())
    current = {r['row']: (r['fingerprint'], r['setup_values']) for r in manifest['rows']}
    changed = 0
    for record in store.records():
        if record.get('migrated_from') and record['row'] in current:
            fp, setup = current[record['row']]
            if record.get('fingerprint') != fp:
                store.put(dict(record, fingerprint=fp, setup=setup))
                changed += 1
    return changed
