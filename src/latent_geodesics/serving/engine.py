"""The ROS-free heart of the geodesic server: a model (and its graph), request
checking, and the queries the node offers. The node only converts messages.

Every query checks its input and raises RequestError with a message a user can
act on; the node turns that into success=False. The served model is held as one
immutable `Served` record that `reload` swaps in one assignment, so a request
in flight finishes on the pair it started with.
"""
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from latent_geodesics.errors import (
    ConfigError,
    GraphError,
    LimitError,
    RequestError,
    check_number,
    is_number,
)
from latent_geodesics.geometry.metric import log_magnification_factor
from latent_geodesics.geometry.refinement import MODES, nn_geodesic, polyline_geodesic
from latent_geodesics.graph.build import GRAPH
from latent_geodesics.graph.latent_graph import LatentGraph
from latent_geodesics.model.iwae import IWAE, load_model
from latent_geodesics.model.loading import DEFAULT_METRIC, METRICS, model_graph
from latent_geodesics.model.report import Reconstruction, TrainingReport
from latent_geodesics.serving.fidelity import RecordedData
from latent_geodesics.serving.parsing import (
    check_configurations,
    check_offsets,
    configurations,
    endpoint,
    endpoints,
    finite_result,
    latent_points,
    near_data,
    run_model,
    scaling_factors,
)
from latent_geodesics.serving.planning import plan
from latent_geodesics.serving.trajectory import JointLimits

INITS = ("graph", "straight")
KEPT_URDF = "robot_description is empty; keeping the joint limits of the last URDF"


@dataclass(frozen=True)
class Served:
    model: IWAE
    joint_names: tuple
    graph: LatentGraph
    limits: JointLimits
    recorded: RecordedData                     # the training poses, for fidelity stats
    endpoint_limit: float                      # rad, max_endpoint_offset in force (0 = none)
    info: dict = field(default_factory=dict)   # load/build times, graph source
    urdf: str = None                           # the URDF whose limits are in force, if any


POSITIVE_SETTINGS = ("outside_factor", "max_joint_velocity", "position_tolerance",
                     "max_joint_step", "max_duration")
SETTING_FLOORS = {"k": 1, "n_samples": 2, "nn_tolerance": 0, "relax_iterations": 0,
                  "polyline_iterations": 1, "nn_iterations": 1, "nn_max_iterations": 1,
                  "max_points": 1, "max_lengths": 1, "max_endpoints": 1,
                  "max_joint_acceleration": 0, "max_endpoint_offset": -1, "max_data_distance": 0,
                  "torch_threads": 0}
# What the engine reads on every request (the rest when a model is loaded): a node
# may change these while serving.
REQUEST_TIME_SETTINGS = ("default_mode", "default_init", "polyline_iterations",
                         "nn_iterations", "nn_tolerance", "nn_max_iterations", "max_points",
                         "max_lengths", "max_endpoints", "max_joint_step",
                         "max_data_distance", "position_tolerance", "max_duration")


@dataclass
class Settings:
    """Every server setting and its default: the one source the YAML, the launch
    files and the README follow."""
    device: str = "auto"
    k: int = GRAPH.k
    n_samples: int = GRAPH.n_samples
    graph_cache: bool = True
    outside_factor: float = GRAPH.outside_factor
    relax_iterations: int = GRAPH.relax_iterations   # graph paths: energy relaxation (0: none)
    metric: str = DEFAULT_METRIC           # leaving the data costs more; "mean": J^T J alone
    max_joint_velocity: float = 1.0        # rad/s, joints without a URDF/override limit
    max_joint_acceleration: float = 2.0    # rad/s^2, 0 = not limited
    joint_limits: dict = field(default_factory=dict)   # MoveIt joint_limits.yaml entries
    position_tolerance: float = 0.01       # rad beyond a position limit before refusing
    max_joint_step: float = 0.05           # rad between consecutive trajectory points
    max_duration: float = 600.0            # s, longest motion served (longer: refused)
    max_endpoint_offset: float = -1.0      # rad; -1 = auto (from the held-out error), 0 = none
    max_data_distance: float = 0.0         # rad from the nearest recorded pose; 0 = no limit
    default_mode: str = "polyline"
    default_init: str = "graph"
    polyline_iterations: int = 25
    nn_iterations: int = 300
    nn_tolerance: float = 1e-4             # relative improvement to go on; 0 = whole budget
    nn_max_iterations: int = 100000
    max_points: int = 100000               # points per encode/decode/MF request
    max_lengths: int = 1000000             # starts x goals per ~geodesic_lengths request
    max_endpoints: int = 1000              # starts + goals per ~geodesic_lengths request
    torch_threads: int = 1                 # CPU threads per request while serving; 0 = torch's
    joint_names: list = field(default_factory=list)

    def validate(self):
        """ConfigError naming the first setting outside its range."""
        for name in POSITIVE_SETTINGS:
            check_number(name, getattr(self, name), above=0)
        for name, low in SETTING_FLOORS.items():
            check_number(name, getattr(self, name), low=low)
        choices = {"default_mode": MODES, "default_init": INITS, "metric": METRICS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError("parameter %s must be one of %s, not %r"
                                   % (name, ", ".join(allowed), getattr(self, name)))
        if not isinstance(self.joint_limits, dict):
            raise ConfigError("parameter joint_limits must be a dictionary of joints")
        if not isinstance(self.joint_names, (list, tuple)) or \
                not all(isinstance(n, str) for n in self.joint_names):
            raise ConfigError("parameter joint_names must be a list of strings")
        return self


ENDPOINT_P99_FACTOR = 1.5    # auto max_endpoint_offset: this x the held-out poses' 99th
ENDPOINT_RMSE_FACTOR = 5.0   # percentile worst-joint error (this x the RMSE for older models),
ENDPOINT_MIN_OFFSET = 0.05   # but at least this (rad)


def endpoint_limit_of(model, setting):
    """(limit in rad, how it was chosen): the setting, or with -1 (auto) a multiple of
    the model's held-out reconstruction error: a pose the model reproduces as well as
    99 % of the held-out poses passes, one it cannot reproduce is refused."""
    if setting >= 0:
        return setting, ("%.3f rad" % setting) if setting > 0 else "off"
    report = TrainingReport.of(model)
    held = report.held_out if report is not None else Reconstruction()
    for value, factor, what in ((held.pose_error_p99, ENDPOINT_P99_FACTOR,
                                 "the held-out poses' 99th-percentile worst-joint error"),
                                (held.rmse, ENDPOINT_RMSE_FACTOR, "the held-out RMSE")):
        if is_number(value):
            limit = max(ENDPOINT_MIN_OFFSET, factor * float(value))
            return limit, "%.3f rad (auto: %g x %s %.4f, at least %g)" % (
                limit, factor, what, value, ENDPOINT_MIN_OFFSET)
    return 0.0, "off (auto, but the model has no held-out error)"


@torch.no_grad()
def recorded_data(model):
    """The recorded poses of a model: its data.npy, else its decoded training latents."""
    if model.data is not None:
        return RecordedData(model.data)
    z = torch.as_tensor(model.latents, dtype=torch.float32, device=model.device)
    return RecordedData(model.decode(z).double().cpu().numpy())


class Engine:
    def __init__(self, model_dir, settings=None, log=print, robot_description=None, warn=None,
                 planning_limits=None):
        """robot_description: a URDF string whose joint limits apply, or None;
        planning_limits: MoveIt's joint_limits.yaml entries (robot_description_planning),
        applied over the URDF's and under settings.joint_limits.
        log(message) for information, warn(message) for what a user should look at."""
        self.settings = (settings or Settings()).validate()
        self.log = log
        self.warn = warn or log
        self.robot_description = robot_description
        self.planning_limits = planning_limits or {}
        self._swap_lock = threading.Lock()
        self.served = self._load(model_dir)

    def _load(self, model_dir):
        cfg = self.settings
        start = time.perf_counter()
        model = load_model(model_dir, cfg.device)
        loaded = time.perf_counter()
        names = list(cfg.joint_names) or model.joint_names
        if len(names) != model.x_dim:
            raise RequestError("%d joint names given for a model of %d joints"
                               % (len(names), model.x_dim))
        limits, urdf = self._limits(names)
        graph, source = self._graph(model)
        info = {"model_seconds": loaded - start, "graph_seconds": time.perf_counter() - loaded,
                "graph_source": source, "model_dir": model.directory}
        endpoint_limit, why = endpoint_limit_of(model, cfg.max_endpoint_offset)
        self.log("model %s on %s loaded in %.2f s; graph (%d nodes, %d edges, %d bridges, "
                 "metric %s) %s in %.2f s; joint limits from %s; max_endpoint_offset %s"
                 % (model.directory, model.device, info["model_seconds"], len(graph),
                    len(graph.edges), int(graph.is_bridge.sum()), cfg.metric, source,
                    info["graph_seconds"], limits.source, why))
        return Served(model, tuple(names), graph, limits, recorded_data(model),
                      endpoint_limit, info, urdf)

    def _limits(self, names):
        """(the joint limits, the URDF they include or None)."""
        cfg = self.settings
        urdf, note = self._urdf()
        try:
            limits = JointLimits.uniform(names, cfg.max_joint_velocity,
                                         cfg.max_joint_acceleration)
            if urdf is not None:
                limits = limits.with_urdf(urdf)
            if not isinstance(self.planning_limits, dict):
                raise LimitError("robot_description_planning/joint_limits must be a dictionary "
                                 "of joints")
            limits = limits.with_overrides(self.planning_limits, "moveit", strict=False)
            limits = limits.with_overrides(cfg.joint_limits)
        except LimitError as e:
            raise RequestError(str(e)) from None
        limits.source += note   # the reload's answer says why the old URDF still applies
        return limits, urdf

    def _urdf(self):
        """(the URDF whose limits apply, a note for the limits' source): robot_description;
        when it is empty or gone (ROS 1: a deleted parameter is None; ROS 2: an empty
        message) while a URDF's limits are in force, that URDF, with a warning: a robot's
        position limits are never dropped by a reload (the learner reloads every round)."""
        given = self.robot_description
        if not (given is None or (isinstance(given, str) and not given.strip())):
            return given, ""
        last = getattr(getattr(self, "served", None), "urdf", None)
        if last is None:
            return None, ""
        self.warn(KEPT_URDF + " (restart the server to serve without a URDF)")
        return last, " (%s)" % KEPT_URDF

    def _graph(self, model):
        cfg = self.settings
        return model_graph(model, cfg.k, cfg.n_samples, cfg.metric, cfg.graph_cache,
                           warn=self.warn, outside_factor=cfg.outside_factor,
                           relax_iterations=cfg.relax_iterations)

    def reload(self, model_dir=None):
        """Load a new model and graph beside the old, then swap in one assignment."""
        with self._swap_lock:  # one reload at a time; readers never wait
            new = self._load(model_dir or self.served.model.directory)
            self.served = new
        return new

    # --- queries ----------------------------------------------------------
    def encode(self, joint_names, positions):
        served = self.served
        q = configurations(served, joint_names, positions, self.settings.max_points)
        check_configurations(served, self.settings, q, lambda r: "configuration %d" % r)
        z = run_model(served, "encode", q)
        return served.model.z_dim, finite_result(z, "the latent point")

    def decode(self, latent):
        served = self.served
        z = near_data(served, latent_points(served, latent,
                                                       max_rows=self.settings.max_points),
                           "latent")
        return list(served.joint_names), finite_result(run_model(served, "decode", z),
                                                       "the configuration")

    def magnification(self, latent):
        served = self.served
        z = near_data(served, latent_points(served, latent,
                                                       max_rows=self.settings.max_points),
                           "latent")
        log_mf = log_magnification_factor(served.graph.decoder, z).double().cpu().numpy()
        finite_result(log_mf, "the magnification factor")
        return np.exp(log_mf), log_mf

    # --- geodesics -----------------------------------------------------------
    def graph_geodesic(self, start, goal, scaling=(0.0, 0.0)):
        """start/goal: (joint_names, positions, latent) triples; scaling: MoveIt's
        (velocity, acceleration) scaling factors, 0 = 1."""
        served = self.served
        scaling = scaling_factors(*scaling)
        (zs, qs), (zg, qg) = endpoints(served, self.settings, start, goal)
        path = self.graph_path(served, zs, zg)
        return plan(served, self.settings, path, qs, qg, scaling)

    def geodesic_lengths(self, starts, goals):
        """Graph geodesic lengths (S, T) from every start to every goal in one
        multi-source Dijkstra; starts/goals: lists of (joint_names, positions,
        latent) triples, each checked like a geodesic's endpoint."""
        served = self.served
        if not starts or not goals:
            raise RequestError("give at least one start and one goal")
        # Each endpoint is encoded and checked on its own: its count is bounded too.
        if len(starts) + len(goals) > self.settings.max_endpoints:
            raise RequestError("%d starts + %d goals = %d endpoints, more than max_endpoints "
                               "%d per request: split it" % (
                                   len(starts), len(goals), len(starts) + len(goals),
                                   self.settings.max_endpoints))
        if len(starts) * len(goals) > self.settings.max_lengths:
            raise RequestError("%d starts x %d goals = %d lengths, more than max_lengths %d "
                               "per request: split it" % (len(starts), len(goals),
                                                          len(starts) * len(goals),
                                                          self.settings.max_lengths))
        labels = ["start %d" % i for i in range(len(starts))] + \
            ["goal %d" % i for i in range(len(goals))]
        ends = [endpoint(served, self.settings, *end, label)
                for end, label in zip(list(starts) + list(goals), labels)]
        check_offsets(served, *((z, q, label) for (z, q), label in zip(ends, labels)))
        z = np.array([z for z, _ in ends])
        lengths = served.graph.distances(z[:len(starts)], z[len(starts):])
        return finite_result(lengths, "geodesic lengths")

    @staticmethod
    def graph_path(served, zs, zg):
        try:
            return served.graph.shortest_path(zs, zg)
        except GraphError as e:
            raise RequestError(str(e)) from None

    def nn_geodesic(self, start, goal, mode="", init="", max_iterations=0, callback=None,
                    should_stop=None, scaling=(0.0, 0.0)):
        """The refinement action. Empty/zero fields mean the configured defaults."""
        served, cfg = self.served, self.settings
        scaling = scaling_factors(*scaling)
        mode, init = mode or cfg.default_mode, init or cfg.default_init
        if mode not in MODES:
            raise RequestError("mode must be one of %s, not '%s'" % (", ".join(MODES), mode))
        if init not in INITS:
            raise RequestError("init must be one of %s, not '%s'" % (", ".join(INITS), init))
        max_iterations = max_iterations or (cfg.polyline_iterations if mode == "polyline"
                                            else cfg.nn_iterations)
        if not 1 <= max_iterations <= cfg.nn_max_iterations:
            raise RequestError("max_iterations must be 1..%d (0 = default), not %d"
                               % (cfg.nn_max_iterations, max_iterations))
        (zs, qs), (zg, qg) = endpoints(served, self.settings, start, goal)
        coarse = self.graph_path(served, zs, zg) if init == "graph" else None
        step = served.graph.step
        if mode == "polyline":
            path = polyline_geodesic(served.graph.decoder, zs, zg, init=coarse, step=step,
                                     max_iterations=max_iterations, callback=callback,
                                     should_stop=should_stop)
        else:
            path = nn_geodesic(served.graph.decoder, zs, zg, init=coarse, mode=mode, step=step,
                               max_iterations=max_iterations, callback=callback,
                               should_stop=should_stop, n_out=50, tol=cfg.nn_tolerance)
        if coarse is not None:
            path.stats.nodes_expanded = coarse.stats.nodes_expanded
            if path.stats.candidate == "initial":   # the graph path itself is served
                path.stats.bridges = coarse.stats.bridges
        return plan(served, self.settings, path, qs, qg, scaling)

