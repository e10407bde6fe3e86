"""The ROS-free heart of the geodesic server: a model (and its graph), request
checking, and the queries the node offers. The node only converts messages.

Every query checks its input and raises RequestError with a message a user can
act on; the node turns that into success=False. The served model is held as one
immutable `Served` record that `reload` swaps in one assignment, so a request
in flight finishes on the pair it started with.
"""
import re
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from latent_geodesics.errors import (
    GraphError,
    LimitError,
    RequestError,
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
from latent_geodesics.serving.world import RobotWorld, WorldSettings, robot_body
from latent_geodesics.settings import runtime_names, setting
from latent_geodesics.settings import validate as validate_settings

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
    body: object = None                        # world.RobotBody of that URDF (collisions)


def device_refusal(value):
    ok = isinstance(value, str) and (value in ("auto", "cpu") or re.fullmatch(r"cuda(:\d+)?",
                                                                           value))
    return None if ok else "must be auto, cpu or cuda[:N]"


def joint_limits_refusal(value):
    return None if isinstance(value, dict) else "must be a dictionary of joints"


def joint_names_refusal(value):
    ok = isinstance(value, (list, tuple)) and all(isinstance(n, str) for n in value)
    return None if ok else "must be a list of strings"


def spheres_refusal(value):
    ok = isinstance(value, dict) and all(
        isinstance(v, (list, tuple)) and all(isinstance(r, (list, tuple)) and len(r) == 4
                                              and all(is_number(c) for c in r) for r in v)
        for v in value.values())
    return None if ok else "must map link names to lists of [x, y, z, radius]"


@dataclass
class Settings:
    """Every server setting: default, range and meaning, declared once (settings.py).
    The YAML, the ROS 1 reading, the ROS 2 descriptors and validate() follow it;
    runtime ones are read on every request, so a node may change them while serving."""
    device: str = setting("auto", "where the model runs: auto (CUDA when present), cpu, "
                          "cuda[:N]", check=device_refusal)
    k: int = setting(GRAPH.k, "neighbours per graph node", low=1, high=1000)
    n_samples: int = setting(GRAPH.n_samples, "points measuring the typical graph edge",
                             low=2, high=1000)
    graph_cache: bool = setting(True, "keep the graph beside the model and reuse it")
    outside_factor: float = setting(GRAPH.outside_factor, "refuse points farther than this x "
                                    "the graph's neighbour reach", positive=True, high=1e6)
    relax_iterations: int = setting(GRAPH.relax_iterations, "energy relaxation of graph "
                                    "paths (0: none)", low=0, high=10000)
    metric: str = setting(DEFAULT_METRIC, "data-aware: leaving the data costs more; "
                          "mean: J^T J alone", choices=METRICS)
    max_joint_velocity: float = setting(1.0, "rad/s, joints without a URDF or override "
                                        "limit", positive=True, high=1e3)
    max_joint_acceleration: float = setting(2.0, "rad/s^2, joints without an override "
                                            "limit; 0 = not limited", low=0.0, high=1e5)
    joint_limits: dict = setting({}, "MoveIt joint_limits.yaml entries",
                                 check=joint_limits_refusal)
    position_tolerance: float = setting(0.01, "rad beyond a position limit before refusing",
                                        positive=True, high=10.0, runtime=True)
    max_joint_step: float = setting(0.05, "rad between consecutive trajectory points",
                                    positive=True, high=10.0, runtime=True)
    max_duration: float = setting(600.0, "s, the longest motion served (longer: refused)",
                                  positive=True, high=1e6, runtime=True)
    max_endpoint_offset: float = setting(-1.0, "rad; -1 = auto (from the held-out error), "
                                         "0 = none", low=-1.0, high=100.0)
    max_data_distance: float = setting(0.0, "rad from the nearest recorded pose; 0 = no "
                                       "limit", low=0.0, high=1e3, runtime=True)
    default_mode: str = setting("polyline", "the refinement an empty mode asks for",
                                choices=MODES, runtime=True)
    default_init: str = setting("graph", "the curve an empty init starts from",
                                choices=INITS, runtime=True)
    polyline_iterations: int = setting(25, "Levenberg-Marquardt steps of the polyline "
                                       "refinement", low=1, high=100000, runtime=True)
    nn_iterations: int = setting(300, "Adam steps of an NN refinement", low=1, high=10 ** 6,
                                 runtime=True)
    nn_tolerance: float = setting(1e-4, "relative improvement to go on; 0 = whole budget",
                                  low=0.0, high=1.0, runtime=True)
    nn_max_iterations: int = setting(100000, "the most iterations a request may ask for",
                                     low=1, high=10 ** 7, runtime=True)
    max_points: int = setting(100000, "points per encode, decode or MF request", low=1,
                              high=10 ** 7, runtime=True)
    max_lengths: int = setting(1000000, "starts x goals per ~geodesic_lengths request",
                               low=1, high=10 ** 8, runtime=True)
    max_endpoints: int = setting(1000, "starts + goals per ~geodesic_lengths request",
                                 low=1, high=10 ** 6, runtime=True)
    torch_threads: int = setting(1, "CPU threads per request while serving; 0 = torch's",
                                 low=0, high=1024)
    joint_names: list = setting([], "the model's joint names, if its own are not the "
                                "robot's", check=joint_names_refusal)
    collision_padding: float = setting(0.02, "m a planned motion keeps from every object "
                                       "of the scene", low=0.0, high=1.0, runtime=True)
    obstacle_influence: float = setting(0.10, "m from an object where the metric starts to "
                                        "price nearness", positive=True, high=10.0,
                                        runtime=True)
    obstacle_cost: float = setting(2.0, "the metric's price of touching an object (about rad "
                                   "of demonstrated motion); 0 = checks only", low=0.0,
                                   high=1e4, runtime=True)
    collision_resolution: float = setting(0.005, "m a body point may move between checked "
                                          "configurations where the clearance does not "
                                          "already bound the stretch between them",
                                          positive=True, high=0.1, runtime=True)
    robot_spheres: dict = setting({}, "per-link collision spheres {link: [[x, y, z, r], ...]} "
                                  "replacing the URDF's geometry", check=spheres_refusal)

    def validate(self):
        """ConfigError naming the first setting outside its declaration."""
        return validate_settings(self)


def world_settings(cfg):
    return WorldSettings(padding=cfg.collision_padding, influence=cfg.obstacle_influence,
                         cost=cfg.obstacle_cost, resolution=cfg.collision_resolution)


# What the engine reads on every request (the rest when a model is loaded): a node
# may change these while serving.
REQUEST_TIME_SETTINGS = runtime_names(Settings)


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


def check_length_request(settings, starts, goals):
    """Refuse a ~geodesic_lengths request without ends or beyond its caps."""
    if not starts or not goals:
        raise RequestError("give at least one start and one goal")
    # Each endpoint is encoded and checked on its own: its count is bounded too.
    if len(starts) + len(goals) > settings.max_endpoints:
        raise RequestError("%d starts + %d goals = %d endpoints, more than max_endpoints "
                           "%d per request: split it" % (
                               len(starts), len(goals), len(starts) + len(goals),
                               settings.max_endpoints))
    if len(starts) * len(goals) > settings.max_lengths:
        raise RequestError("%d starts x %d goals = %d lengths, more than max_lengths %d "
                           "per request: split it" % (len(starts), len(goals),
                                                      len(starts) * len(goals),
                                                      settings.max_lengths))


DETOUR_KNOTS, DETOUR_ITERATIONS = 32, 100
# A way left by the objects this many times longer than the way without them takes other
# demonstrations: the way without them is bent around the objects instead, where it can be
LOCAL_DETOUR = 1.25
# rad: a bent way this near the recorded poses is served before a longer way left along
# other demonstrations; farther, the nearer of the two (a bend that takes the arm far
# from anything demonstrated is not what a user asked for either)
NEAR_DATA = 0.3


def detour(served, zs, zg, world, why):
    """Where no path along the demonstrations keeps clear of the objects, leave them
    as the world's metric prices it: the graph's own path relaxed under that metric,
    whose barrier pushes it off the objects while its data term holds it near the
    demonstrations; what still comes too near is bent in joint space when planned
    (serving/detour.py)."""
    try:
        coarse = served.graph.shortest_path(zs, zg)
    except GraphError:
        raise RequestError(why) from None
    path = polyline_geodesic(world.metric, zs, zg, init=coarse, step=served.graph.step,
                             knots=DETOUR_KNOTS, max_iterations=DETOUR_ITERATIONS)
    path.method = "graph+detour"
    return path


def around_objects(served, settings, path, ends, scaling, world):
    """The way the demonstrations take without the objects, bent around them
    (serving/detour.py, roadmap.py), where the way the scene leaves is more than
    LOCAL_DETOUR times longer: it then takes other demonstrations, far from the
    blocked one, where a user expects the blocked motion to go around the object.
    The bent way is served where it stays within NEAR_DATA of the recorded poses, or
    nearer them than the way left; None where the way left is not much longer, or
    is the better (the caller plans it). Both ways are measured without the
    objects' barrier (which prices nearness, not length)."""
    graph = served.graph
    zs, zg = path.points[0], path.points[-1]
    # the node path bounds its shortened way from above: a stricter test, and cheap
    if graph.measure(path.points) <= LOCAL_DETOUR * graph.shortest_path(
            zs, zg, shorten=False).length:
        return None
    try:
        bent = plan(served, settings, graph.shortest_path(zs, zg), *ends, scaling, world)
    except RequestError:
        return None
    if bent.stats.data_distance <= NEAR_DATA:
        return bent
    try:
        left = plan(served, settings, path, *ends, scaling, world)
    except RequestError:
        return bent
    return bent if bent.stats.data_distance < left.stats.data_distance else left


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
        self.world = RobotWorld(world_settings(self.settings),
                                getattr(self.served.body, "root_frame", ""))

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
        graph.search.warm()
        info = {"model_seconds": loaded - start, "graph_seconds": time.perf_counter() - loaded,
                "graph_source": source, "model_dir": model.directory}
        endpoint_limit, why = endpoint_limit_of(model, cfg.max_endpoint_offset)
        self.log("model %s on %s loaded in %.2f s; graph (%d nodes, %d edges, %d bridges, "
                 "metric %s) %s in %.2f s; joint limits from %s; max_endpoint_offset %s"
                 % (model.directory, model.device, info["model_seconds"], len(graph),
                    len(graph.edges), int(graph.is_bridge.sum()), cfg.metric, source,
                    info["graph_seconds"], limits.source, why))
        body = robot_body(urdf, names, cfg.robot_spheres or None, self.warn)
        return Served(model, tuple(names), graph, limits, recorded_data(model),
                      endpoint_limit, info, urdf, body)

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
        world = self.world_for(served, (zs, qs), (zg, qg))
        path = self.graph_path(served, zs, zg, world)
        local = world and around_objects(served, self.settings, path, (qs, qg), scaling, world)
        return local or plan(served, self.settings, path, qs, qg, scaling, world)

    def world_for(self, served, start, goal):
        """This request in the scene (RequestWorld), or None while it is empty."""
        self.world.settings = world_settings(self.settings)   # runtime settings
        return self.world.request(served, start, goal)

    def geodesic_lengths(self, starts, goals):
        """Graph geodesic lengths (S, T) from every start to every goal in one
        multi-source Dijkstra; starts/goals: lists of (joint_names, positions,
        latent) triples, each checked like a geodesic's endpoint."""
        served = self.served
        check_length_request(self.settings, starts, goals)
        labels = ["start %d" % i for i in range(len(starts))] + \
            ["goal %d" % i for i in range(len(goals))]
        ends = [endpoint(served, self.settings, *end, label)
                for end, label in zip(list(starts) + list(goals), labels)]
        check_offsets(served, *((z, q, label) for (z, q), label in zip(ends, labels)))
        z = np.array([z for z, _ in ends])
        world = self.world.view(served)   # with objects: the graph the scene leaves
        edge_set = world.edge_set(self.settings.collision_padding) if world else (None, None)
        lengths = served.graph.distances(z[:len(starts)], z[len(starts):], *edge_set)
        cut = np.argwhere(np.isinf(lengths)) if world else []
        if len(cut):
            raise RequestError(
                "start %d and goal %d (and %d more pairs) have no way along the "
                "demonstrations that keeps collision_padding from the scene's objects"
                % (cut[0][0], cut[0][1], len(cut) - 1))
        return finite_result(lengths, "geodesic lengths")

    @staticmethod
    def graph_path(served, zs, zg, world=None):
        try:
            return served.graph.shortest_path(zs, zg, world=world)
        except GraphError as e:
            if world is None:
                raise RequestError(str(e)) from None
            return detour(served, zs, zg, world, str(e))

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
        world = self.world_for(served, (zs, qs), (zg, qg))
        coarse = self.graph_path(served, zs, zg, world) if init == "graph" or world else None
        metric = served.graph.metric if world is None else world.metric
        step = served.graph.step
        if mode == "polyline":
            path = polyline_geodesic(metric, zs, zg, init=coarse, step=step,
                                     max_iterations=max_iterations, callback=callback,
                                     should_stop=should_stop)
        else:
            path = nn_geodesic(metric, zs, zg, init=coarse, mode=mode, step=step,
                               max_iterations=max_iterations, callback=callback,
                               should_stop=should_stop, n_out=50, tol=cfg.nn_tolerance)
        if world is not None and not world.polyline_clear(path.points):
            path = coarse   # the refinement cut toward an object: the checked graph path
        if coarse is not None:
            path.stats.nodes_expanded = coarse.stats.nodes_expanded
            if path.stats.candidate == "initial":   # the graph path itself is served
                path.stats.bridges = coarse.stats.bridges
        return plan(served, self.settings, path, qs, qg, scaling, world)

