"""Does what a marker reads agree with the stored runs? Reports, summary.json, the README lines and
the lessons' results cells, each compared with what the stored runs give now (data with data, text
with text: nothing is parsed back)."""
import json
import shutil
import tempfile
from pathlib import Path

from . import report, variants


def problems(repo):
    """Every disagreement between what is committed and what the stored runs give (empty: agree)."""
    repo = Path(repo)
    reports = repo / 'reports'
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        for name in variants.names():
            if (reports / 'runs' / name).is_dir():
                shutil.copytree(reports / 'runs' / name, fresh / 'runs' / name)
            for suffix in ('.ipynb',):
                if (reports / f'{name}{suffix}').exists():
                    shutil.copy(reports / f'{name}{suffix}', fresh / f'{name}{suffix}')
            report.write_report(name, fresh)
            for page in (f'{name}.md', f'{name}_runs.md'):
                committed = reports / page
                if not committed.exists() or committed.read_text() != (fresh / page).read_text():
                    found.append(f'reports/{page} is not what the stored runs give: run '
                                 f'`python -m audit {name[:2]} --report-only`')
        judged = report.summaries(reports)
        summary = report.summary_json(judged)
        committed = reports / 'summary.json'
        if not committed.exists() or json.loads(committed.read_text()) != json.loads(json.dumps(summary)):
            found.append('reports/summary.json is not what the stored runs give: run '
                         '`python -m audit all --report-only`')
        readme = (repo / 'README.md').read_text()
        if report.replace_between(readme, report.results_lines(judged)) != readme:
            found.append('the README results lines are not what the stored runs give: run '
                         '`python -m audit all --report-only`')
        for s in judged:
            lesson = repo / 'notebooks' / f"{s['name']}.ipynb"
            if lesson.exists() and report.START in lesson.read_text():
                cell = next(''.join(c['source']) for c in json.loads(lesson.read_text())['cells']
                            if c['cell_type'] == 'markdown' and report.START in ''.join(c['source']))
                if report.replace_between(cell, report.lesson_cell(s)) != cell:
                    found.append(f'the results cell of notebooks/{lesson.name} is not what the stored runs '
                                 f'give: run `python -m audit {s["name"][:2]} --report-only`')
    return found
