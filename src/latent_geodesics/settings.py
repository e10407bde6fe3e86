"""One declaration per setting: a dataclass field that says its default, its range
or choices, what it means and whether it may change while a node runs.

Every settings dataclass of the package (the server's Settings, execution
monitoring, the nodes' own parameters, the learner's LoopConfig) is declared with
`setting(...)`; `validate` checks an instance against the declarations (once, at
the boundary), `read` builds one from any parameter lookup (ROS 1's get_param), and
the ROS 2 front end turns `specs` into parameter descriptors. The YAML files are
tested against the same declarations.
"""
import math
from dataclasses import MISSING, dataclass, field, fields

from latent_geodesics.errors import ConfigError


@dataclass(frozen=True)
class Spec:
    """A setting's declaration, as a field's metadata holds it."""
    name: str
    default: object
    doc: str
    low: float = None           # inclusive bounds of a number, None: unbounded
    high: float = None
    positive: bool = False      # a number that must be > 0 (low is then 0)
    choices: tuple = None       # the allowed values of a string
    runtime: bool = False       # may change while the node runs
    check: object = None        # check(value) -> reason it is refused, or None

    @property
    def kind(self):
        return type(self.default)


def setting(default, doc, low=None, high=None, positive=False, choices=None, runtime=False,
            check=None):
    """A dataclass field declaring one setting (a list or dict default is copied)."""
    meta = dict(doc=doc, low=low, high=high, positive=positive,
                choices=None if choices is None else tuple(choices), runtime=runtime,
                check=check)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def specs(settings):
    """The Specs of a settings dataclass (class or instance), in declaration order."""
    out = []
    for f in fields(settings):
        default = f.default_factory() if f.default is MISSING else f.default
        out.append(Spec(f.name, default, **f.metadata))
    return out


def runtime_names(settings):
    return tuple(s.name for s in specs(settings) if s.runtime)


def read(cls, lookup):
    """cls built from lookup(name, default) for each setting (e.g. rospy.get_param
    with a node's private prefix), then validated."""
    return validate(cls(**{s.name: as_declared(lookup(s.name, s.default), s.default)
                           for s in specs(cls)}))


def as_declared(value, default):
    """A parameter server's value in the declared type where that loses nothing: an
    integer for a float setting (YAML's 5 for 5.0); anything else is left to validate."""
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def check_value(settings, name, value):
    """value, or ConfigError if the declaration of settings.name refuses it."""
    spec = next(s for s in specs(settings) if s.name == name)
    reason = refusal(spec, value)
    if reason:
        raise ConfigError("parameter %s %s, not %r (%s)" % (name, reason, value, spec.doc))
    return value


def validate(instance):
    """The instance, or ConfigError naming the first setting outside its declaration."""
    for spec in specs(instance):
        reason = refusal(spec, getattr(instance, spec.name))
        if reason:
            raise ConfigError("parameter %s %s, not %r (%s)"
                              % (spec.name, reason, getattr(instance, spec.name), spec.doc))
    return instance


def refusal(spec, value):
    """Why value is refused for spec, or None."""
    if spec.check is not None:
        return spec.check(value)
    if spec.choices is not None:
        return None if value in spec.choices else "must be one of %s" % ", ".join(spec.choices)
    kind = spec.kind
    if kind is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if kind in (int, float):
        return _number_refusal(spec, value)
    if not isinstance(value, kind):
        return "must be a %s" % kind.__name__
    return None


def _number_refusal(spec, value):
    integer = spec.kind is int
    what = "an integer" if integer else "a number"
    if spec.positive:
        what = "a positive " + what.split()[-1]
    shown = "%d" if integer else "%g"
    bounds = ([] if spec.low is None or spec.positive else [">= " + shown % spec.low]) + \
        ([] if spec.high is None else ["<= " + shown % spec.high])
    wrong_type = isinstance(value, bool) or not isinstance(value, int if integer else (int, float))
    if wrong_type or not math.isfinite(value) or (spec.positive and value <= 0) \
            or (spec.low is not None and value < spec.low) \
            or (spec.high is not None and value > spec.high):
        return "must be %s" % " ".join([what] + [" and ".join(bounds)] if bounds else [what])
    return None
