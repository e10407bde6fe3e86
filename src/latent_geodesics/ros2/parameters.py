"""Parameters of the ROS 2 nodes: declared from the core's settings dataclasses
(Settings, LoopConfig: the one source of defaults), with descriptors, and the ROS 1
YAML files turned into ROS 2 parameter files."""
import copy
import dataclasses
import math
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

from latent_geodesics.engine import POSITIVE_SETTINGS, SETTING_FLOORS

TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
         float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
         list: ParameterType.PARAMETER_STRING_ARRAY}
RESTART = "read at start: restart the node (or call ~/reload) to change it"
HALF_TURN = math.pi   # rad: a per-joint angle beyond this is a mistake, not a setting
HOUR = 3600.0         # s
DAY = 86400.0         # s
# Upper bounds of the engine's numeric Settings (their lower ones are the core's
# checks): they catch a typo (1e300) before anything reads it.
SETTING_CEILINGS = {
    "k": 1000, "n_samples": 1000, "outside_factor": 1000.0, "relax_iterations": 10 ** 5,
    "max_joint_velocity": 100.0, "max_joint_acceleration": 1000.0,   # rad/s, rad/s^2
    "position_tolerance": HALF_TURN, "max_joint_step": HALF_TURN,
    "max_endpoint_offset": HALF_TURN,
    "max_data_distance": 100.0,   # rad, a distance over all the joints
    "polyline_iterations": 10 ** 5, "nn_iterations": 10 ** 6, "nn_tolerance": 1.0,
    "nn_max_iterations": 10 ** 7, "max_points": 10 ** 7, "max_lengths": 10 ** 8,
    "torch_threads": 1024}
# The range, (lowest, highest), of every numeric parameter of the ROS 2 nodes. A
# positive setting's range starts at 0, which the core then refuses. ROS 2 tools
# show the range; a set outside it is refused, naming the parameter.
RANGES = {
    **{name: (0.0, SETTING_CEILINGS[name]) for name in POSITIVE_SETTINGS},
    **{name: (low, SETTING_CEILINGS[name]) for name, low in SETTING_FLOORS.items()},
    # geodesic_server's own
    "feedback_every": (1, 10 ** 6), "joint_states_max_age": (0.0, HOUR),
    "robot_description_wait": (0.0, HOUR),
    # active_learner: LoopConfig, as its validate() checks them
    "rounds": (1, 10 ** 6), "queries_per_round": (1, 1000), "epochs": (1, 10 ** 5),
    "seed": (0, 2 ** 32 - 1), "max_demonstration_points": (2, 10 ** 7),
    "teacher_timeout": (0.0, DAY), "reload_timeout": (0.0, DAY),
    # demonstrator, trajectory_player
    "sample_period": (0.001, 60.0), "rate": (0.1, 1000.0), "pause": (0.0, HOUR),
    # every node that offers a service
    "service_queue_depth": (1, 10 ** 4),
}


def field_type(field):
    return field.type if isinstance(field.type, type) else type(field.default)


def descriptor(name, kind, read_only=True):
    """A parameter's descriptor: its type, its range from RANGES for a number (a
    number without one is a KeyError: every numeric parameter has a range) and
    whether it can change while running."""
    desc = ParameterDescriptor(name=name, type=TYPES[kind], read_only=read_only,
                               description=RESTART if read_only else "takes effect at once")
    if kind is int:
        low, high = RANGES[name]
        desc.integer_range = [IntegerRange(from_value=low, to_value=high, step=0)]
    elif kind is float:
        low, high = RANGES[name]
        desc.floating_point_range = [FloatingPointRange(from_value=float(low),
                                                        to_value=float(high), step=0.0)]
    return desc


@dataclasses.dataclass
class ServiceQueue:
    """Requests (and answers) a service holds for its callers: DDS drops any beyond
    (ROS 2's default of 10 lost calls to 24 client processes, whose callers then
    wait forever). At least the number of callers that may call at once."""
    service_queue_depth: int = 100


def service_qos(node):
    """ROS 2's service QoS with the depth of the node's service_queue_depth parameter
    (declared here): for every service (and action) the node offers."""
    depth = declare_dataclass(node, ServiceQueue()).service_queue_depth
    qos = copy.copy(qos_profile_services_default)
    qos.depth = depth
    return qos


def declare_dataclass(node, instance, writable=()):
    """Declare every scalar and list field of a settings dataclass as a parameter
    (defaults from the dataclass, values from the overrides: --params-file, -p) and
    return the dataclass with those values. Dictionary fields are nested parameters
    (`joint_limits.panda_joint1.max_velocity`), read with `nested`."""
    values = {}
    for field in dataclasses.fields(instance):
        kind = field_type(field)
        if kind is dict:
            continue
        value = getattr(instance, field.name)
        if node.has_parameter(field.name):   # auto-declared from an override: retyped
            value = coerce(node.get_parameter(field.name).value, kind, value)
            node.undeclare_parameter(field.name)
        desc = descriptor(field.name, kind, read_only=field.name not in writable)
        if kind is list and not value:   # an empty array has no type in ROS 2
            desc.dynamic_typing = True
        values[field.name] = node.declare_parameter(field.name, value, desc,
                                                  ignore_override=True).value
    return dataclasses.replace(instance, **values)


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
