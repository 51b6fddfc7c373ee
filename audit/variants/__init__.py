"""The five coursework variants, one module each: the report's rows, the readings of its misses,
and how one run of a row is trained.

A module has NAME (the lesson's and the report's file stem) and plan(quick, device) -> Plan.
quick=True trains a small subset for 1 epoch: it checks the code and judges nothing.
"""
import dataclasses
import importlib
from typing import Callable, Optional

MODULES = {'01': 'v01', '02': 'v02', '03': 'v03', '04': 'v04', '05': 'v05'}


@dataclasses.dataclass
class Plan:
    rows: list                  # row dicts made by audit.lab.row
    train: Callable             # train(**row options) -> my_utils History
    setup: dict                 # what every row shares: with a row's options, its fingerprint
    # Rows that depend on stored runs (04's `extra` takes its epochs from the validation row):
    # called with the Lab after `rows` ran, returns more rows to run.
    later: Optional[Callable] = None


def load(key):
    """The variant module for '02', '02_fashion_two_mlp_unfold' or 'v02'."""
    short = str(key)[:2]
    if short not in MODULES:
        raise KeyError(f'{key!r} names no variant; choose from {", ".join(names())}')
    return importlib.import_module(f'{__name__}.{MODULES[short]}')


def names():
    """Every variant's name, in order ('01_fashion_mixer_conv_stem', ...)."""
    return [load(key).NAME for key in MODULES]
