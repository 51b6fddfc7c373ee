"""Set-up for `pytest --nbval notebooks/`: quick mode, and a kernel whose output does not depend on the shell."""
import os

# The notebooks run in quick mode unless the reproduction command passes its settings; a marker's
# shell may still hold them from a reproduction, so drop them here.
os.environ.pop('MY_UTILS_REPRO', None)
# The kernel inherits this environment. Warnings go to stderr, which nbval compares like any
# output, so a new deprecation in some library would fail an unchanged cell: silence them there.
os.environ['PYTHONWARNINGS'] = 'ignore'
# A backend exported by the shell (MPLBACKEND=Agg on CI) would stop figures from being shown inline.
os.environ.pop('MPLBACKEND', None)
