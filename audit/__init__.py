"""The audit of the five coursework reports: a tool of this repository, not installed with my_utils.

`python -m audit 02` trains the rows of variant 02 (audit/variants/v02.py) and writes reports/;
an audit notebook (audit/notebooks/) opens the stored runs with `stored('02')`.
"""
from pathlib import Path

from .lab import Lab, Markdown, row  # noqa: F401


def stored(key):
    """A Lab over the stored runs of one variant, rows from its module (as the report): no training."""
    from . import judge, settings
    runs = settings.current().runs
    if not runs:  # opened by hand: the checkout's reports/runs/
        runs = Path(__file__).resolve().parents[1] / 'reports' / 'runs'
    return judge.open_lab(key, Path(runs))
