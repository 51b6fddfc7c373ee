"""The executed audit copy: a variant's audit notebook run on the stored runs alone.

The notebook runs in a child process of its own session, so that a Ctrl-C reaches only the
command (which stops the child and writes the reports) and never nbclient's kernel handling;
the copy is written through a temporary file and a rename.

    python -m audit.execute NOTEBOOK COPY   # what the command runs in the child
"""
import datetime
import os
import subprocess
import sys
from pathlib import Path

from .store import RunStore


def execute_copy(name, repo, reports, settings):
    """Execute audit/notebooks/<name>.ipynb into <reports>/<name>.ipynb; returns the error, or None."""
    notebook = Path(repo) / 'audit' / 'notebooks' / f'{name}.ipynb'
    copy = Path(reports) / f'{name}.ipynb'
    shown = type(settings)(**{**vars(settings), 'stored_only': True, 'quick': False})
    env = {**os.environ, **shown.to_env(), 'PYTHONPATH': str(repo)}
    child = subprocess.Popen([sys.executable, '-m', 'audit.execute', str(notebook), str(copy)],
                             env=env, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    try:
        output, _ = child.communicate()
    except KeyboardInterrupt:
        child.kill()
        child.wait()
        raise
    if child.returncode:
        lines = output.strip().splitlines()
        return lines[-1] if lines else f'exit status {child.returncode}'
    return None


def _execute(notebook, copy):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == 'code':
            cell.outputs, cell.execution_count = [], None
    error = None
    try:
        NotebookClient(nb, timeout=600, kernel_name='python3',
                       resources={'metadata': {'path': str(Path(notebook).parent)}}).execute()
    except CellExecutionError as err:
        error = f'{err.ename}: {err.evalue}'
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(_rebuilt_note(Path(copy).stem)))
    tmp = Path(copy).with_name(f'.{Path(copy).name}.{os.getpid()}.tmp')
    nbformat.write(nb, tmp)
    os.replace(tmp, copy)
    if error:
        raise SystemExit(error)


def _rebuilt_note(name):
    from .settings import current
    records = RunStore(Path(current().runs) / name).records()
    dates = sorted(r['date'][:10] for r in records)
    span = f'{dates[0]} to {dates[-1]}' if dates else 'no runs yet'
    return (f'**Executed on {datetime.date.today().isoformat()} from stored runs**: this copy trained '
            f'nothing; it shows the {len(records)} runs stored in `reports/runs/{name}/` (trained {span}).')


if __name__ == '__main__':
    _execute(*sys.argv[1:3])
