"""Executing a notebook for the command: outputs cleared first, the settings passed, progress echoed."""
import datetime
import os
import sys
import time
from pathlib import Path

import nbformat

from .store import RunStore


def execute_notebook(notebook, copy_path, settings, echo=True):
    """Run `notebook` top to bottom in a fresh kernel and write its executed copy; returns the
    error that stopped it, or None. Every output is cleared first, so a cell after a failure
    shows nothing rather than an older run's output."""
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == 'code':
            cell.outputs, cell.execution_count = [], None
    # The kernel inherits the settings and the absolute data root (it runs inside notebooks/).
    env = {**settings.to_env(), **({'MY_UTILS_DATA': settings.data} if settings.data else {})}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    error = None
    try:
        _client(nb, notebook.parent, echo).execute()
    except CellExecutionError as err:
        error = f'{err.ename}: {err.evalue}'
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    if settings.stored_only:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(_rebuilt_note(notebook.stem, settings)))
    tmp = Path(copy_path).with_name(f'.{Path(copy_path).name}.tmp')
    nbformat.write(nb, tmp)
    os.replace(tmp, copy_path)
    return error


def _rebuilt_note(name, settings):
    records = RunStore(Path(settings.runs) / name).records()
    dates = sorted(r['date'][:10] for r in records)
    span = f'{dates[0]} to {dates[-1]}' if dates else 'no runs yet'
    return (f'**Rebuilt from stored runs** on {datetime.date.today().isoformat()}: this copy trained '
            f'nothing; it shows the {len(records)} runs stored in `reports/runs/{name}/` '
            f'(trained {span}), their printed lines and curves drawn from their stored histories.')


def _client(nb, workdir, echo=True):
    """nbclient's NotebookClient that echoes each cell's first line and printed text."""
    from nbclient import NotebookClient

    tty = sys.stdout.isatty()
    last = [0.0]

    class EchoingClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            if echo and msg['msg_type'] == 'stream':
                sys.stdout.write(msg['content']['text'])
                sys.stdout.flush()
            return super().output(outs, msg, display_id, cell_index)

        def process_message(self, msg, cell, cell_index):
            # train_ch6's progress is a display updated in place: echo it, rewritten in a
            # terminal, every 30 s at most into a log file.
            if echo and msg['msg_type'] == 'update_display_data':
                text = msg['content'].get('data', {}).get('text/plain', '')
                if text.startswith('epoch ') and 'batch' in text:
                    if tty:
                        sys.stdout.write('\r' + text[:100].ljust(100))
                    elif time.time() - last[0] > 30:
                        sys.stdout.write(text[:100] + '\n')
                        last[0] = time.time()
                    sys.stdout.flush()
            return super().process_message(msg, cell, cell_index)

    code = [i for i, c in enumerate(nb.cells) if c.cell_type == 'code']
    start = time.time()

    def announce(cell, cell_index, **_):
        if echo and cell.cell_type == 'code':
            first = next((ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith('#')), '')
            print(f'[{code.index(cell_index) + 1}/{len(code)} {time.time() - start:6.0f} s] {first[:70]}',
                  flush=True)

    return EchoingClient(nb, timeout=None, kernel_name='python3', on_cell_start=announce,
                         resources={'metadata': {'path': str(workdir)}})
