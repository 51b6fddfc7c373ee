"""Stored runs: one JSON file per (row, seed), written atomically, so no crash can cost more than one run.

Layout: <runs>/<notebook>/<row>__seed<N>.json. A run is skipped on resume when its file is there.
A damaged file is moved aside (never deleted) and that one run is trained again.
"""
import datetime
import json
import os
import re
import warnings
from pathlib import Path


class StoreWarning(UserWarning):
    """A stored run could not be read: that run alone is lost to the report (its file is kept)."""


def slug(row):
    """A file-name-safe form of a row id ('sgd lr 0.2 m 0.99' -> 'sgd_lr_0.2_m_0.99')."""
    return re.sub(r'[^A-Za-z0-9.+-]+', '_', str(row)).strip('_') or 'row'


def write_json(path, data):
    """Write through a temporary file and a rename: a reader sees the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


class RunStore:
    """The stored runs of one notebook, in `folder` (None: kept in memory, nothing written)."""

    def __init__(self, folder):
        self.folder = Path(folder) if folder else None
        self._memory = {}

    def path(self, row, seed, kind='json'):
        return self.folder / f'{slug(row)}__seed{seed}.{kind}'

    def get(self, row, seed):
        """The stored record of (row, seed), or None when there is none (or it was damaged)."""
        if self.folder is None:
            return self._memory.get((row, seed))
        path = self.path(row, seed)
        return _read(path) if path.exists() else None

    def put(self, record):
        if self.folder is None:
            self._memory[(record['row'], record['seed'])] = record
        else:
            write_json(self.path(record['row'], record['seed']), record)

    def put_aside(self, record, kind):
        """Keep a run that is not a result (a stale one, an interrupted one) beside the results."""
        if self.folder is not None:
            write_json(self.path(record['row'], record['seed'], f'{kind}.json.keep'), record)

    def records(self, row=None):
        """Stored records of one row (or all), sorted by row and seed; damaged files are skipped."""
        if self.folder is None:
            found = list(self._memory.values())
        else:
            found = [r for p in sorted(self.folder.glob('*__seed*.json')) if (r := _read(p))]
        found = [r for r in found if row is None or r['row'] == row]
        return sorted(found, key=lambda r: (str(r['row']), r['seed']))


def record_stop(folder, error):
    """Keep (or clear, with None) why the last run of a variant stopped before its rows: a data
    set that is not on the machine, with the name the library's DataError carries."""
    path = Path(folder) / 'last_error.json'
    if error is None:
        path.unlink(missing_ok=True)
        return
    write_json(path, {'error': f'{type(error).__name__}: {error}',
                      'dataset': getattr(error, 'dataset', None),
                      'date': datetime.datetime.now().isoformat(timespec='seconds')})


def last_stop(folder):
    """What record_stop kept: a dict with 'error' and 'dataset', or None."""
    path = Path(folder) / 'last_error.json'
    return json.loads(path.read_text()) if path.exists() else None


def _read(path):
    """A record from its file; a damaged file is renamed *.damaged with one warning naming it."""
    try:
        record = json.loads(Path(path).read_text())
        if not isinstance(record, dict) or 'row' not in record or 'seed' not in record:
            raise ValueError('not a stored run (no row or seed)')
        return record
    except (ValueError, UnicodeDecodeError) as err:
        kept = Path(path).with_suffix('.damaged')
        os.replace(path, kept)
        warnings.warn(f'stored run {path} is damaged ({type(err).__name__}: {err}); moved to '
                      f'{kept.name} and that run will be trained again', StoreWarning, stacklevel=3)
        return None
