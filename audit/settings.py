"""The audit's settings: one object, from the command to the Lab (and to the executed notebook).

The command passes it to an executed audit notebook through the one environment variable
AUDIT_SETTINGS; a notebook opened by hand has none and reads the stored runs of the checkout.
"""
import dataclasses
import json
import os

VARIABLE = 'AUDIT_SETTINGS'


@dataclasses.dataclass
class Settings:
    quick: bool = True          # a small subset and 1 epoch: checks the pipeline, measures nothing
    seeds: int = 3              # seeds per row (rows may declare more; quick mode: 1)
    seed: int = None            # train only this seed of the chosen rows (None: every seed)
    rows: list = None           # train only these row ids (None: every row); others show what is stored
    stored_only: bool = False   # train nothing: show the stored runs, the rest as not run
    retrain: bool = False       # train stored runs again (the old run is kept beside the new one)
    runs: str = None            # folder of stored runs (None: memory only)
    repo: str = None            # the checkout, for the commit a run records
    data: str = None            # absolute data root (the caller's relative path resolved)
    device: str = None          # 'cuda', 'cpu', ... (None: my_utils.try_gpu())

    @property
    def num_seeds(self):
        return 1 if self.quick else self.seeds

    @property
    def device_type(self):
        return (self.device or 'cpu').split(':')[0]

    def to_env(self):
        return {VARIABLE: json.dumps(dataclasses.asdict(self))}


def current():
    """The settings the command passed, else the defaults (quick mode, in memory)."""
    text = os.environ.get(VARIABLE)
    if not text:
        return Settings()
    fields = {f.name for f in dataclasses.fields(Settings)}
    return Settings(**{k: v for k, v in json.loads(text).items() if k in fields})
