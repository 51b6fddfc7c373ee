"""`mu.` holds d2l's names and the documented additions, and nothing of the reproduction tooling."""
import re
import subprocess
import sys
from pathlib import Path

import my_utils as mu

API_DOC = Path(__file__).resolve().parent.parent / 'docs' / 'api.md'


def api_table_names():
    text = API_DOC.read_text().split('\n## Names\n', 1)[1].split('\n## ', 1)[0]
    names = set()
    for line in text.splitlines():
        if line.startswith('| `'):
            first = line.split(' | ')[0]
            names |= {re.match(r'\w+', code).group() for code in re.findall(r'`([^`]+)`', first)}
    return names


def test_the_api_table_in_docs_lists_exactly_mu_all():
    assert api_table_names() == set(mu.__all__)


def test_every_public_name_exists_and_the_tooling_is_not_among_them():
    assert all(hasattr(mu, name) for name in mu.__all__)
    for name in ('ResultStore', 'compare_table', 'verdict', 'quick_mode', 'Lab', 'SYNTHETIC_MARKER'):
        assert name not in mu.__all__
    code = 'import sys, my_utils; print("audit" in sys.modules)'
    assert subprocess.run([sys.executable, '-c', code], capture_output=True, text=True).stdout.strip() == 'False'
