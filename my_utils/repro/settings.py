"""The reproduction's settings: one object, passed from the command to the notebook's kernel.

The command serialises it into the one environment variable MY_UTILS_REPRO; a notebook opened
by hand has none and gets the defaults (quick mode, nothing stored). nbval's conftest does the same.
"""
import dataclasses
import json
import os

VARIABLE = 'MY_UTILS_REPRO'


@dataclasses.dataclass
class Settings:
    quick: bool = True          # a small subset and 1 epoch: checks the pipeline, measures nothing
    seeds: int = 3              # seeds per row in full mode (quick mode: 1)
    rows: list = None           # train only these row ids (None: every row); others show what is stored
    stored_only: bool = False   # train nothing: show the stored runs, the rest as not run
    runs: str = None            # folder of stored runs (None: memory only)
    share: bool = False         # another process works on the same notebook: mark runs in progress
    repo: str = None            # the checkout, for the commit a run records
    data: str = None            # absolute data root (the caller's relative path resolved)

    @property
    def num_seeds(self):
        return 1 if self.quick else self.seeds

    def to_env(self):
        return {VARIABLE: json.dumps(dataclasses.asdict(self))}


def current():
    """The settings the command passed, else the defaults (quick mode, in memory)."""
    text = os.environ.get(VARIABLE)
    if not text:
        return Settings()
    fields = {f.name for f in dataclasses.fields(Settings)}
    return Settings(**{k: v for k, v in json.loads(text).items() if k in fields})
