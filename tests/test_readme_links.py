"""Every relative link in README.md and docs/*.md points at a file or folder of the repository."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
# [text](target) outside code blocks; a target with a scheme (https:, mailto:) or only an
# anchor is not a file.
LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')


def relative_links(page):
    text = re.sub(r'```.*?```', '', page.read_text(), flags=re.S)  # code blocks hold no links
    for target in LINK.findall(text):
        if re.match(r'[a-z][a-z0-9+.-]*:', target) or target.startswith('#'):
            continue
        yield target.split('#', 1)[0]


def test_the_pages_exist_and_link_somewhere():
    assert (ROOT / 'docs' / 'api.md') in PAGES
    assert all(list(relative_links(page)) for page in PAGES)


@pytest.mark.parametrize('page', PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    missing = [t for t in relative_links(page) if not (page.parent / t).exists()]
    assert missing == [], f'{page.relative_to(ROOT)} links to files that do not exist: {missing}'


def test_the_readme_is_short():
    assert len((ROOT / 'README.md').read_text().splitlines()) <= 150
