"""Does what a marker reads agree with the stored runs? Reports, README table and executed copies."""
import shutil
import tempfile
from pathlib import Path

import nbformat

from .lab import TABLE_HEADER as HEADER
from .report import README_END, README_START, results_table, write_report


def table_verdicts(markdown):
    """{row: verdict} from the reported-beside-ours tables in a text (the verdict is column 5)."""
    found, inside = {}, False
    for line in markdown.splitlines():
        if line.strip() == HEADER:
            inside = True
        elif not line.startswith('|'):
            inside = False
        elif inside and not line.startswith('| ---'):
            found[line.strip().strip('|').split(' | ')[0].strip()] = line.split(' | ')[4].strip()
    return found


def copy_problems(copy, report_md):
    """What is wrong with an executed copy: outputs after an error, verdicts unlike the report's."""
    nb = nbformat.read(copy, as_version=4)
    problems, failed = [], False
    verdicts = {}
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == 'code'):
        if failed and cell.get('outputs'):
            problems.append(f'{copy.name}: code cell {i + 1} has outputs after a failed cell')
        for out in cell.get('outputs', []):
            failed |= out.get('output_type') == 'error'
            verdicts.update(table_verdicts(out.get('data', {}).get('text/markdown', '')))
    expected = table_verdicts(Path(report_md).read_text()) if Path(report_md).exists() else {}
    for row_id, text in verdicts.items():
        if row_id in expected and expected[row_id] != text:
            problems.append(f'{copy.name}: row {row_id!r} reads "{text}", its report "{expected[row_id]}"')
    return problems


def problems(repo, names):
    """Every disagreement between reports/, the README table and the stored runs (empty: all agree)."""
    repo = Path(repo)
    reports = repo / 'reports'
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            if not (reports / 'runs' / name).is_dir():
                continue
            shutil.copytree(reports / 'runs' / name, Path(tmp) / 'runs' / name)
            if (reports / f'{name}.ipynb').exists():
                shutil.copy(reports / f'{name}.ipynb', Path(tmp) / f'{name}.ipynb')
            fresh = write_report(name, tmp, f'python -m audit {name[:2]}').read_text()
            committed = reports / f'{name}.md'
            if not committed.exists() or committed.read_text() != fresh:
                found.append(f'reports/{name}.md is not what the stored runs give: run '
                             f'`python -m audit {name[:2]} --report-only`')
            if (reports / f'{name}.ipynb').exists():
                found += copy_problems(reports / f'{name}.ipynb', committed)
        readme = (repo / 'README.md').read_text()
        table = readme.split(README_START, 1)[-1].split(README_END, 1)[0].strip()
        if table != results_table(reports, names).strip():
            found.append('the README results table is not what the stored runs give: run '
                         '`python -m audit all --report-only`')
    return found
