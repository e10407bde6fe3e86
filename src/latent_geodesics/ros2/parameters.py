"""Parameters of the ROS 2 nodes: declared from the core's settings declarations
(settings.py: default, range, meaning, whether it may change while running) with
descriptors, and the ROS 1 YAML files turned into ROS 2 parameter files."""
import copy
import dataclasses
import os
import tempfile

import yaml
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.qos import qos_profile_services_default

from latent_geodesics.settings import setting, specs, validate

TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
         float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
         list: ParameterType.PARAMETER_STRING_ARRAY}
RESTART = "read at start: restart the node (or call ~/reload) to change it"


def descriptor(spec):
    """A setting's ROS 2 descriptor: its type, meaning, range (ROS 2 tools show and
    enforce it; the core's validate() checks the rest) and whether it may change while
    the node runs."""
    desc = ParameterDescriptor(
        name=spec.name, type=TYPES[spec.kind], read_only=not spec.runtime,
        description=spec.doc + ("" if spec.runtime else "; " + RESTART))
    if spec.choices:
        desc.additional_constraints = "one of: " + ", ".join(spec.choices)
    low = 0 if spec.positive else spec.low
    if spec.kind is int and (low is not None or spec.high is not None):
        desc.integer_range = [IntegerRange(from_value=int(-2 ** 62 if low is None else low),
                                           to_value=int(2 ** 62 if spec.high is None
                                                        else spec.high), step=0)]
    elif spec.kind is float and (low is not None or spec.high is not None):
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(-1e300 if low is None else low),
            to_value=float(1e300 if spec.high is None else spec.high), step=0.0)]
    return desc


def declare_settings(node, settings):
    """Declare every scalar and list setting of a settings dataclass (settings.py) as a
    parameter (defaults from the declaration, values from the overrides: --params-file,
    -p) and return the dataclass with those values, validated. Dictionary settings are
    nested parameters (`joint_limits.panda_joint1.max_velocity`), read with `nested`."""
    values = {}
    for spec in specs(settings):
        if spec.kind is dict:
            continue
        value = getattr(settings, spec.name)
        if node.has_parameter(spec.name):   # auto-declared from an override: retyped
            value = coerce(node.get_parameter(spec.name).value, spec.kind, value)
            node.undeclare_parameter(spec.name)
        desc = descriptor(spec)
        if spec.kind is list and not value:   # an empty array has no type in ROS 2
            desc.dynamic_typing = True
        values[spec.name] = node.declare_parameter(spec.name, value, desc,
                                                   ignore_override=True).value
    return validate(dataclasses.replace(settings, **values))


@dataclasses.dataclass(frozen=True)
class ServiceQueue:
    """Requests (and answers) a service holds for its callers: DDS drops any beyond
    (ROS 2's default of 10 lost calls to 24 client processes, whose callers then
    wait forever). At least the number of callers that may call at once."""
    service_queue_depth: int = setting(100, "requests a service (or action) holds for its "
                                       "callers; more are dropped by DDS", low=1, high=10 ** 4)


def service_qos(node):
    """ROS 2's service QoS with the depth of the node's service_queue_depth parameter
    (declared here): for every service, action and client the node has."""
    depth = declare_settings(node, ServiceQueue()).service_queue_depth
    qos = copy.copy(qos_profile_services_default)
    qos.depth = depth
    return qos


def coerce(value, kind, default):
    """An override in the field's type: 2 for a float field is 2.0, an empty array
    is []; anything else is left for the dataclass's validate() to refuse."""
    if value is None:
        return default
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is list:
        return list(value)
    return value


def nested(node, prefix):
    """Parameters under `prefix.` as a nested dictionary (ROS 2 flattens YAML maps)."""
    tree = {}
    for name, param in node.get_parameters_by_prefix(prefix).items():
        *parents, leaf = name.split(".")
        branch = tree
        for key in parents:
            branch = branch.setdefault(key, {})
        branch[leaf] = param.value
    return tree


def on_change(names, apply):
    """An on-set-parameters callback for the parameters `names`: their new values are
    checked by the core's validate() (through `apply(changes)`, which raises
    ValueError) before they count."""
    def callback(params):
        known = {p.name: p.value for p in params if p.name in names}
        try:
            apply(known)
        except (ValueError, TypeError) as e:
            return SetParametersResult(successful=False, reason=str(e))
        return SetParametersResult(successful=True)
    return callback


def ros2_parameters(values):
    """A ROS 1 style parameter dictionary in ROS 2's form (every node: `/**`). Empty
    lists and dictionaries are left out: ROS 2 has no type for them (the defaults
    are empty)."""
    kept = {k: v for k, v in values.items() if v is not None and v != [] and v != {}}
    return {"/**": {"ros__parameters": kept}}


def params_file_args(path):
    """`--ros-args --params-file` arguments for a parameter file: a ROS 2 file as it
    is, a ROS 1 one (config/*.yaml, flat keys) converted to a temporary ROS 2 file."""
    with open(path) as f:
        values = yaml.safe_load(f) or {}
    if any(isinstance(v, dict) and "ros__parameters" in v for v in values.values()):
        return ["--params-file", path]
    fd, converted = tempfile.mkstemp(prefix="latent_geodesics_", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(ros2_parameters(values), f)
    return ["--params-file", converted]
