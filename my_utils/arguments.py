"""The type tests every argument check shares.

Python's bool is an int (True == 1), but a flag passed where a count or a size belongs is a
mistake, so these refuse it; numpy's integers and floats pass, as numbers.Integral/Real do.
"""
import numbers


def is_int(value, minimum=None):
    """An int but not a bool, and >= minimum when one is given."""
    return (isinstance(value, numbers.Integral) and not isinstance(value, bool)
            and (minimum is None or value >= minimum))


def is_number(value, low=None, high=None):
    """A real number but not a bool, inside [low, high] where those are given."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and (low is None or value >= low) and (high is None or value <= high))
