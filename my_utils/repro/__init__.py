"""Reproduction tooling for the coursework notebooks: not part of the student's `mu.` namespace.

A notebook uses `Lab` and `row`; `python -m my_utils.repro` runs notebooks and writes reports/.
"""
from .lab import Lab, Markdown, row  # noqa: F401
