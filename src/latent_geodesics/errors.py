"""The package's errors: one hierarchy, every one a ValueError with a message that
says what was wrong and what would help. Nodes turn RequestError into
success=False and keep serving; a ConfigError (or any other Error) at start-up is
one FATAL line."""
import math


class Error(ValueError):
    """Base of every error this package raises on purpose."""


class ConfigError(Error):
    """A setting or parameter outside its range."""


class RequestError(Error):
    """A request that cannot be answered."""


class PointError(RequestError):
    """A point that is not finite, of the wrong dimension, or far from the data."""


class StateError(RequestError):
    """No usable current robot state."""


class GraphError(Error):
    """A graph query or file the graph cannot answer."""


class ModelError(Error):
    """A model directory that cannot be loaded or does not fit."""


class DataError(Error):
    """Data that cannot be trained on."""


class LimitError(Error):
    """Joint limits that are inconsistent, or a path that cannot be timed within them."""


class StoreError(Error):
    """A demonstration store that cannot be used."""


def is_number(value):
    """A finite real number (an int or float, not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def check_number(name, value, low=None, above=None, integer=False, error=ConfigError):
    """value if it is a finite number (an integer if asked) >= low and > above;
    else `error` naming the parameter."""
    ok = is_number(value) and (not integer or isinstance(value, int)) \
        and (low is None or value >= low) and (above is None or value > above)
    if not ok:
        kind = "an integer" if integer else "a number"
        bound = (" >= %g" % low if low is not None else "") + \
            (" > %g" % above if above is not None else "")
        if above == 0 and low is None:
            kind, bound = ("a positive integer" if integer else "a positive number"), ""
        raise error("parameter %s must be %s%s, not %r" % (name, kind, bound, value))
    return value
