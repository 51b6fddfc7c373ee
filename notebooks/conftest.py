"""Set-up for `pytest --nbval notebooks/`: a kernel whose output does not depend on the shell or
on the network."""
import os

# The kernel inherits this environment. A lesson must never wait on a network under test: its
# loader then takes the files on disk, or a labelled stand-in, without trying to download.
os.environ['MY_UTILS_OFFLINE'] = '1'
# Warnings go to stderr, which nbval compares like any output, so a new deprecation in some
# library would fail an unchanged cell: silence them there.
os.environ['PYTHONWARNINGS'] = 'ignore'
# A backend exported by the shell (MPLBACKEND=Agg on CI) would stop figures from being shown inline.
os.environ.pop('MPLBACKEND', None)
