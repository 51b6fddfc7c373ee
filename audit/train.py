"""Training one variant's rows: every missing run, each stored the moment it ends."""
import my_utils as mu

from .lab import Lab
from .store import record_stop


def train_variant(module, settings):
    """Run (or, with stored_only, show) every row of a variant; returns why it stopped, or None.

    A data set that is not on this machine stops the variant with a DataError, which is recorded
    so that its report can say 'not yet run' and why."""
    device = settings.device or str(mu.try_gpu())
    settings = type(settings)(**{**vars(settings), 'device': device})
    lab = Lab(module.NAME, settings=settings)
    plan = module.plan(settings.quick, device)
    folder = lab.store.folder
    try:
        lab.run_rows(plan.rows, plan.train, plan.setup)
        if plan.later:
            lab.run_rows(plan.later(lab), plan.train, plan.setup)
    except mu.DataError as err:
        if folder and not settings.quick:
            record_stop(folder, err)
        return f'DataError: {err}'
    if folder and not settings.quick and not settings.stored_only:
        record_stop(folder, None)
    return None
