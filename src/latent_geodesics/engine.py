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

from .curves import smooth, split, subdivide
from .fidelity import RecordedData, chord
from .geometry import log_magnification_factor
from .graph import RELAX_ITERATIONS, GraphError
from .loading import DEFAULT_METRIC, METRICS, model_graph
from .model import load_model
from .nn_geodesic import MODES, nn_geodesic, polyline_geodesic
from .trajectory import (JointLimits, LimitError, carry_residuals, select_waypoints,
                         time_parametrize)
from .errors import ConfigError, RequestError, check_number, is_number
from .results import GeodesicSummary, PathResult  # noqa: F401  (PathResult: the engine's result type)

INITS = ("graph", "straight")
FLOAT32_MAX = float(np.finfo(np.float32).max)




@dataclass(frozen=True)
class Served:
    model: object
    joint_names: tuple
    graph: object
    limits: JointLimits
    recorded: RecordedData                     # the training poses, for fidelity stats
    endpoint_limit: float                      # rad, max_endpoint_offset in force (0 = none)
    info: dict = field(default_factory=dict)   # load/build times, graph source


@dataclass
class Settings:
    """Every server setting and its default: the one source the YAML, the launch
    files and the README follow."""
    device: str = "auto"
    k: int = 10
    n_samples: int = 10
    graph_cache: bool = True
    outside_factor: float = 3.0
    relax_iterations: int = RELAX_ITERATIONS   # graph paths: energy relaxation (0: none)
    metric: str = DEFAULT_METRIC           # leaving the data costs more; "mean": J^T J alone
    max_joint_velocity: float = 1.0        # rad/s, joints without a URDF/override limit
    max_joint_acceleration: float = 2.0    # rad/s^2, 0 = not limited
    joint_limits: dict = field(default_factory=dict)   # MoveIt joint_limits.yaml entries
    position_tolerance: float = 0.01       # rad beyond a position limit before refusing
    max_joint_step: float = 0.05           # rad between consecutive trajectory points
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
    joint_names: list = field(default_factory=list)

    def validate(self):
        """ConfigError naming the first setting outside its range."""
        positive = ("outside_factor", "max_joint_velocity", "position_tolerance",
                    "max_joint_step")
        at_least = {"k": 1, "n_samples": 2, "nn_tolerance": 0, "relax_iterations": 0,
                    "polyline_iterations": 1, "nn_iterations": 1, "nn_max_iterations": 1,
                    "max_points": 1, "max_lengths": 1, "max_joint_acceleration": 0,
                    "max_endpoint_offset": -1, "max_data_distance": 0}
        for name in positive:
            check_number(name, getattr(self, name), above=0)
        for name, low in at_least.items():
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


def finite_array(values, what):
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise RequestError("%s is empty" % what)
    if not np.isfinite(arr).all():
        raise RequestError("%s holds NaN or inf" % what)
    return arr


def rows(values, width, what, max_rows=None):
    """A flat row-major list -> (N, width), refusing a length that does not fit,
    values beyond float32 (the model computes in it) and more than max_rows rows."""
    if max_rows and len(values) > max_rows * width:   # before converting a huge list
        raise RequestError("%s has %d points, more than max_points %d per request"
                           % (what, len(values) // width, max_rows))
    arr = finite_array(values, what)
    if arr.ndim != 1 or arr.size % width:
        raise RequestError("%s has %d values, not a multiple of the dimension %d"
                           % (what, arr.size, width))
    if np.abs(arr).max() > FLOAT32_MAX:
        raise RequestError("%s holds values beyond float32's range" % what)
    return arr.reshape(-1, width)


def finite_result(values, what):
    """No answer carries NaN or inf with success."""
    if not np.isfinite(values).all():
        raise RequestError("%s came out non-finite: the input lies where the model is "
                           "numerically meaningless" % what)
    return values


ENDPOINT_P99_FACTOR = 1.5    # auto max_endpoint_offset: this x the held-out poses' 99th
ENDPOINT_RMSE_FACTOR = 5.0   # percentile worst-joint error (this x the RMSE for older models),
ENDPOINT_MIN_OFFSET = 0.05   # but at least this (rad)


def endpoint_limit_of(model, setting):
    """(limit in rad, how it was chosen): the setting, or with -1 (auto) a multiple of
    the model's held-out reconstruction error: a pose the model reproduces as well as
    99 % of the held-out poses passes, one it cannot reproduce is refused."""
    if setting >= 0:
        return setting, ("%.3f rad" % setting) if setting > 0 else "off"
    held = model.meta.get("report", {}).get("held_out", {})
    for key, factor, what in (("pose_error_p99", ENDPOINT_P99_FACTOR,
                               "the held-out poses' 99th-percentile worst-joint error"),
                              ("rmse", ENDPOINT_RMSE_FACTOR, "the held-out RMSE")):
        value = held.get(key)
        if is_number(value):
            limit = max(ENDPOINT_MIN_OFFSET, factor * float(value))
            return limit, "%.3f rad (auto: %g x %s %.4f, at least %g)" % (
                limit, factor, what, value, ENDPOINT_MIN_OFFSET)
    return 0.0, "off (auto, but the model has no held-out error)"


def scaling_factors(velocity, acceleration):
    """MoveIt's max_velocity/acceleration_scaling_factor: each in (0, 1], 0 = 1."""
    out = []
    for name, value in (("max_velocity_scaling_factor", velocity),
                        ("max_acceleration_scaling_factor", acceleration)):
        value = float(value) or 1.0
        if not (np.isfinite(value) and 0 < value <= 1):
            raise RequestError("%s must be in (0, 1] (0 = 1), not %r" % (name, value))
        out.append(value)
    return tuple(out)


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
        limits = self._limits(names)
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
                      endpoint_limit, info)

    def _limits(self, names):
        cfg = self.settings
        try:
            limits = JointLimits.uniform(names, cfg.max_joint_velocity,
                                         cfg.max_joint_acceleration)
            if self.robot_description:
                limits = limits.with_urdf(self.robot_description)
            if not isinstance(self.planning_limits, dict):
                raise LimitError("robot_description_planning/joint_limits must be a dictionary "
                                 "of joints")
            limits = limits.with_overrides(self.planning_limits, "moveit", strict=False)
            return limits.with_overrides(cfg.joint_limits)
        except LimitError as e:
            raise RequestError(str(e)) from None

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

    # --- conversions ------------------------------------------------------
    @staticmethod
    def configurations(served, joint_names, positions, max_rows=None):
        """Named positions (any joint order) -> (N, Nx) in the model's order."""
        names = list(joint_names) or list(served.joint_names)
        order = {n: i for i, n in enumerate(names)}
        if len(order) != len(names):
            raise RequestError("joint names repeat: %s" % names)
        unknown = [n for n in names if n not in served.joint_names]
        if unknown:
            raise RequestError("unknown joint names %s; the model's joints are %s"
                               % (unknown, list(served.joint_names)))
        missing = [n for n in served.joint_names if n not in order]
        if missing:
            raise RequestError("joint names missing: %s" % missing)
        q = rows(positions, len(names), "positions", max_rows)
        return q[:, [order[n] for n in served.joint_names]]

    @staticmethod
    def latent_points(served, values, what="latent", max_rows=None):
        return rows(values, served.model.z_dim, what, max_rows)

    def near_data(self, served, z, what):
        """Refuse latent points far outside the data (where the decoder extrapolates)."""
        graph = served.graph
        distance, _ = graph.tree.query(z)
        far = np.flatnonzero(distance > graph.outside_factor * graph.reach)
        if len(far):
            raise RequestError("%s point %d is far outside the data: nearest node at latent "
                               "distance %.3g, more than %g x the graph's neighbour reach %.3g"
                               % (what, far[0], distance[far[0]], graph.outside_factor,
                                  graph.reach))
        return z

    @staticmethod
    @torch.no_grad()
    def run_model(served, method, values):
        """served.model.<method> on a float64 array, on the model's device, back to numpy."""
        out = getattr(served.model, method)(torch.as_tensor(values, dtype=torch.float32,
                                                            device=served.model.device))
        return out.cpu().double().numpy()

    # --- queries ----------------------------------------------------------
    def encode(self, joint_names, positions):
        served = self.served
        q = self.configurations(served, joint_names, positions, self.settings.max_points)
        self.check_configurations(served, q, lambda r: "configuration %d" % r)
        z = self.run_model(served, "encode", q)
        return served.model.z_dim, finite_result(z, "the latent point")

    def decode(self, latent):
        served = self.served
        z = self.near_data(served, self.latent_points(served, latent,
                                                       max_rows=self.settings.max_points),
                           "latent")
        return list(served.joint_names), finite_result(self.run_model(served, "decode", z),
                                                       "the configuration")

    def magnification(self, latent):
        served = self.served
        z = self.near_data(served, self.latent_points(served, latent,
                                                       max_rows=self.settings.max_points),
                           "latent")
        log_mf = log_magnification_factor(served.graph.decoder, z).double().cpu().numpy()
        finite_result(log_mf, "the magnification factor")
        return np.exp(log_mf), log_mf

    # --- geodesics -----------------------------------------------------------
    def endpoint(self, served, joint_names, positions, latent, what):
        """(latent point, requested configuration or None) from either form."""
        has_joints, has_latent = len(positions) > 0 or len(joint_names) > 0, len(latent) > 0
        if has_joints == has_latent:
            raise RequestError("%s: give either joint positions or a latent point, not %s"
                               % (what, "both" if has_joints else "neither"))
        q = None
        if has_latent:
            z = self.latent_points(served, latent, what + " latent")
        else:
            q = self.configurations(served, joint_names, positions)
            if len(q) != 1:
                raise RequestError("%s: one configuration expected, got %d" % (what, len(q)))
            self.check_configurations(served, q, lambda r: what)
            q = q[0]
            z = self.run_model(served, "encode", q[None])
        if len(z) != 1:
            raise RequestError("%s: one latent point expected, got %d" % (what, len(z)))
        try:
            return served.graph.check_inside(z[0], what), q
        except GraphError as e:
            raise RequestError(str(e)) from None

    def check_configurations(self, served, q, what):
        """Refuse configurations (N, D) beyond the joint limits or far from the data,
        in one vectorised pass; the message names the first offending row and joint.
        what(row) says which configuration that is."""
        limits = served.limits
        bad = np.argwhere(limits.beyond(q, self.settings.position_tolerance))
        if len(bad):
            r, i = bad[0]
            raise RequestError("%s: joint %s = %.4g rad is outside its limits [%.4g, %.4g] "
                               "(%s)" % (what(r), limits.names[i], q[r, i], limits.lower[i],
                                         limits.upper[i], limits.source))
        # Generous: the training data's mean +- (6 standard deviations + 1 rad).
        mean = served.model.x_mean.double().cpu().numpy()
        spread = 6 * served.model.x_std.double().cpu().numpy() + 1.0
        far = np.argwhere(np.abs(q - mean) > spread)
        if len(far):
            r, i = far[0]
            raise RequestError("%s: joint %s = %.4g rad is far outside the training data "
                               "(mean %.4g, accepted %.4g to %.4g)" % (
                                   what(r), served.joint_names[i], q[r, i], mean[i],
                                   mean[i] - spread[i], mean[i] + spread[i]))

    def endpoints(self, served, start, goal):
        zs, qs = self.endpoint(served, *start, "start")
        zg, qg = self.endpoint(served, *goal, "goal")
        if np.allclose(zs, zg, rtol=0, atol=1e-9) and (
                qs is None or qg is None or np.array_equal(qs, qg)):
            raise RequestError("start and goal are the same point: nothing to plan")
        self.check_offsets(served, (zs, qs, "start"), (zg, qg, "goal"))
        return (zs, qs), (zg, qg)

    def check_offsets(self, served, *ends):
        """Refuse configurations the model reconstructs worse than max_endpoint_offset."""
        limit = served.endpoint_limit
        if limit <= 0:
            return
        for z, q, what in ends:
            if q is None:
                continue
            offset = float(np.abs(self.run_model(served, "decode", z[None])[0] - q).max())
            if offset > limit:
                raise RequestError(
                    "%s: the model reconstructs this configuration %.3f rad off in its worst "
                    "joint, above max_endpoint_offset %.3f rad; demonstrations near this pose "
                    "or a larger latent dimension help" % (what, offset, limit))

    def graph_geodesic(self, start, goal, scaling=(0.0, 0.0)):
        """start/goal: (joint_names, positions, latent) triples; scaling: MoveIt's
        (velocity, acceleration) scaling factors, 0 = 1."""
        served = self.served
        scaling = scaling_factors(*scaling)
        (zs, qs), (zg, qg) = self.endpoints(served, start, goal)
        path = self.graph_path(served, zs, zg)
        return self.decoded(served, path, qs, qg, scaling)

    def geodesic_lengths(self, starts, goals):
        """Graph geodesic lengths (S, T) from every start to every goal in one
        multi-source Dijkstra; starts/goals: lists of (joint_names, positions,
        latent) triples, each checked like a geodesic's endpoint."""
        served = self.served
        if not starts or not goals:
            raise RequestError("give at least one start and one goal")
        if len(starts) * len(goals) > self.settings.max_lengths:
            raise RequestError("%d starts x %d goals = %d lengths, more than max_lengths %d "
                               "per request: split it" % (len(starts), len(goals),
                                                          len(starts) * len(goals),
                                                          self.settings.max_lengths))
        labels = ["start %d" % i for i in range(len(starts))] + \
            ["goal %d" % i for i in range(len(goals))]
        ends = [self.endpoint(served, *end, label)
                for end, label in zip(list(starts) + list(goals), labels)]
        self.check_offsets(served, *((z, q, label) for (z, q), label in zip(ends, labels)))
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
        (zs, qs), (zg, qg) = self.endpoints(served, start, goal)
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
            path.stats.update(nodes_expanded=coarse.stats["nodes_expanded"],
                              bridges=coarse.stats["bridges"] if path.stats.get(
                                  "candidate") == "initial" else path.stats.get("bridges", 0))
        return self.decoded(served, path, qs, qg, scaling)

    def dense_positions(self, served, latent, q_start, q_goal):
        """Latent samples along a path and their joint positions, residuals carried,
        sampled until no joint moves more than half a max_joint_step between them."""
        target = 0.5 * self.settings.max_joint_step
        z, _ = subdivide(latent, served.graph.step)
        for _ in range(6):
            q, off_s, off_g = carry_residuals(self.run_model(served, "decode", z), q_start, q_goal)
            steps = np.abs(np.diff(q, axis=0)).max(axis=1)
            if steps.max() <= target:
                break
            z, _ = split(z, np.ceil(steps / target))
        return z, q, off_s, off_g

    @staticmethod
    def smoothed(served, path):
        """The path with its corners rounded (a B-spline), unless that decodes longer."""
        rounded = smooth(path.points)
        length = served.graph.measure(rounded)
        if length <= path.length:
            return rounded, length
        return path.points, path.length

    def fidelity(self, served, timing):
        """How far the timed motion, and the joint straight line between its ends,
        stray from the recorded poses; refused beyond max_data_distance."""
        served_motion = served.recorded.distance(timing.positions)
        line = served.recorded.distance(chord(timing.positions[0], timing.positions[-1]))
        limit = self.settings.max_data_distance
        if limit > 0 and served_motion.largest > limit:
            where = served_motion.where
            raise RequestError(
                "the motion leaves the recorded data by %.3f rad (%.1f data spacings), more "
                "than max_data_distance %.3f, at %.0f %% of the way (t = %.2f s): no "
                "demonstration covers that region; demonstrate there (the active learner "
                "asks for it) or allow more" % (
                    served_motion.largest, served_motion.largest_spacings, limit, 100 * where,
                    where * timing.duration))
        return {"data_distance": served_motion.largest, "data_distance_mean": served_motion.mean,
                "data_distance_spacings": served_motion.largest_spacings,
                "chord_data_distance": line.largest, "chord_data_distance_mean": line.mean,
                "data_spacing": served.recorded.spacing}

    def decoded(self, served, path, q_start=None, q_goal=None, scaling=(1.0, 1.0)):
        """Decode a latent path into an exact-ended, dense, limit-respecting timed trajectory."""
        cfg = self.settings
        points, length = self.smoothed(served, path)
        z, q, off_s, off_g = self.dense_positions(served, points, q_start, q_goal)
        picks = select_waypoints(q, cfg.max_joint_step)
        q, clipped = served.limits.clip(q[picks], q_start is not None, q_goal is not None)
        try:
            timing = time_parametrize(q, served.limits.scaled(*scaling))
        except LimitError as e:
            raise RequestError("the path cannot be timed: %s" % e) from None
        z = z[picks][timing.kept]
        straight = path.stats.get("straight_length")   # measured by the path's own search
        if straight is None or not np.isfinite(straight):
            straight = served.graph.measure(np.stack([path.points[0], path.points[-1]]))
        stats = {k: v for k, v in path.stats.items() if np.isscalar(v)}
        stats.update(method=path.method, start_offset=off_s, goal_offset=off_g,
                     clipped_points=clipped, duration=timing.duration,
                     max_joint_step=float(np.abs(np.diff(timing.positions, axis=0)).max()),
                     **self.fidelity(served, timing))
        return PathResult(z, timing.positions, timing.time_ns, timing.velocities,
                          timing.accelerations, list(served.joint_names), length,
                          straight, stats)
