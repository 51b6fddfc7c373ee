"""Set-up for `pytest --nbval notebooks/`: quick mode, and a kernel whose output does not depend on the shell."""
import os

# Markers re-execute the notebooks in quick mode unless they ask for full mode explicitly.
os.environ.setdefault('MY_UTILS_QUICK', '1')
# The kernel inherits this environment. Warnings go to stderr, which nbval compares like any
# output, so a new deprecation in some library would fail an unchanged cell: silence them there.
os.environ['PYTHONWARNINGS'] = 'ignore'
# A backend exported by the shell (MPLBACKEND=Agg on CI) would stop figures from being shown inline.
os.environ.pop('MPLBACKEND', None)
