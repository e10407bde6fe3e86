"""The ROS-free heart of the geodesic server: a model (and its graph), request
checking, and the queries the node offers. The node only converts messages.

Every query checks its input and raises RequestError with a message a user can
act on; the node turns that into success=False. The served model is held as one
immutable `Served` record that `reload` swaps in one assignment, so a request
in flight finishes on the pair it started with.
"""
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .geometry import log_magnification_factor
from .graph import GraphError, LatentGraph
from .model import load_model
from .nn_geodesic import MODES, nn_geodesic, polyline_length
from .trajectory import time_parametrize

INITS = ("graph", "straight")


class RequestError(ValueError):
    """A request the server refuses; the message says why."""


@dataclass(frozen=True)
class Served:
    model: object
    joint_names: tuple
    graph: object
    info: dict = field(default_factory=dict)   # load/build times, graph source


@dataclass
class Settings:
    device: str = "auto"
    k: int = 10
    n_samples: int = 10
    graph_cache: bool = True
    outside_factor: float = 3.0
    max_joint_velocity: float = 1.0
    max_joint_acceleration: float = 0.0
    nn_max_iterations: int = 100000
    joint_names: list = field(default_factory=list)


@dataclass
class PathResult:
    """A geodesic decoded and timed for a controller."""
    latent: np.ndarray          # (M, Nz)
    positions: np.ndarray       # (M, Nx), the served joint order
    times: np.ndarray           # (M,) seconds from start
    joint_names: list
    length: float
    straight_line_length: float
    stats: dict


def finite_array(values, what):
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise RequestError("%s is empty" % what)
    if not np.isfinite(arr).all():
        raise RequestError("%s holds NaN or inf" % what)
    return arr


def rows(values, width, what):
    """A flat row-major list -> (N, width), refusing a length that does not fit."""
    arr = finite_array(values, what)
    if arr.ndim != 1 or arr.size % width:
        raise RequestError("%s has %d values, not a multiple of the dimension %d"
                           % (what, arr.size, width))
    return arr.reshape(-1, width)


class Engine:
    def __init__(self, model_dir, settings=None, log=print):
        self.settings = settings or Settings()
        self.log = log
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
        graph, source = self._graph(model)
        info = {"model_seconds": loaded - start, "graph_seconds": time.perf_counter() - loaded,
                "graph_source": source, "model_dir": model.directory}
        self.log("model %s on %s loaded in %.2f s; graph (%d nodes, %d edges) %s in %.2f s"
                 % (model.directory, model.device, info["model_seconds"], len(graph),
                    len(graph.edges), source, info["graph_seconds"]))
        return Served(model, tuple(names), graph, info)

    def _graph(self, model):
        """The model's latent graph: from the cache next to the model when it matches."""
        cfg = self.settings
        model_id = model.meta["files"]["weights.pt"] + model.meta["files"]["latents.npy"]
        path = os.path.join(model.directory, "graph_k%d_n%d.npz" % (cfg.k, cfg.n_samples))
        if cfg.graph_cache and os.path.isfile(path):
            try:
                graph = LatentGraph.load(path, model, cfg.k, cfg.n_samples, model_id,
                                         nodes=model.latents)
                graph.outside_factor = cfg.outside_factor
                return graph, "loaded from cache"
            except GraphError as e:
                self.log("graph cache not used: %s" % e)
        graph = LatentGraph(model, model.latents, cfg.k, cfg.n_samples,
                            outside_factor=cfg.outside_factor)
        if cfg.graph_cache:
            try:
                graph.save(path, model_id)
            except OSError as e:
                self.log("graph cache not written: %s" % e)
        return graph, "built"

    def reload(self, model_dir=None):
        """Load a new model and graph beside the old, then swap in one assignment."""
        with self._swap_lock:  # one reload at a time; readers never wait
            new = self._load(model_dir or self.served.model.directory)
            self.served = new
        return new

    # --- conversions ------------------------------------------------------
    @staticmethod
    def configurations(served, joint_names, positions):
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
        q = rows(positions, len(names), "positions")
        return q[:, [order[n] for n in served.joint_names]]

    @staticmethod
    def latent_points(served, values, what="latent"):
        return rows(values, served.model.z_dim, what)

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
        q = self.configurations(served, joint_names, positions)
        return served.model.z_dim, self.run_model(served, "encode", q)

    def decode(self, latent):
        served = self.served
        z = self.latent_points(served, latent)
        return list(served.joint_names), self.run_model(served, "decode", z)

    def magnification(self, latent):
        served = self.served
        z = self.latent_points(served, latent)
        log_mf = log_magnification_factor(served.model, z).double().cpu().numpy()
        return np.exp(log_mf), log_mf

    # --- geodesics -----------------------------------------------------------
    def endpoint(self, served, joint_names, positions, latent, what):
        """A latent point from either a configuration or a latent vector."""
        has_joints, has_latent = len(positions) > 0 or len(joint_names) > 0, len(latent) > 0
        if has_joints == has_latent:
            raise RequestError("%s: give either joint positions or a latent point, not %s"
                               % (what, "both" if has_joints else "neither"))
        if has_latent:
            z = self.latent_points(served, latent, what + " latent")
        else:
            q = self.configurations(served, joint_names, positions)
            if len(q) != 1:
                raise RequestError("%s: one configuration expected, got %d" % (what, len(q)))
            z = self.run_model(served, "encode", q)
        if len(z) != 1:
            raise RequestError("%s: one latent point expected, got %d" % (what, len(z)))
        try:
            return served.graph.check_inside(z[0], what)
        except GraphError as e:
            raise RequestError(str(e)) from None

    def endpoints(self, served, start, goal):
        zs = self.endpoint(served, *start, "start")
        zg = self.endpoint(served, *goal, "goal")
        if np.allclose(zs, zg, rtol=0, atol=1e-9):
            raise RequestError("start and goal are the same point: nothing to plan")
        return zs, zg

    def graph_geodesic(self, start, goal):
        """start/goal: (joint_names, positions, latent) triples."""
        served = self.served
        zs, zg = self.endpoints(served, start, goal)
        try:
            path = served.graph.shortest_path(zs, zg)
        except GraphError as e:
            raise RequestError(str(e)) from None
        return self.decoded(served, path, zs, zg)

    def nn_geodesic(self, start, goal, mode="", init="", max_iterations=300, callback=None,
                    should_stop=None):
        served, cfg = self.served, self.settings
        mode, init = mode or "finite-difference", init or "graph"
        if mode not in MODES:
            raise RequestError("mode must be one of %s, not '%s'" % (", ".join(MODES), mode))
        if init not in INITS:
            raise RequestError("init must be one of %s, not '%s'" % (", ".join(INITS), init))
        if not 1 <= max_iterations <= cfg.nn_max_iterations:
            raise RequestError("max_iterations must be 1..%d, not %d"
                               % (cfg.nn_max_iterations, max_iterations))
        zs, zg = self.endpoints(served, start, goal)
        coarse = None
        if init == "graph":
            try:
                coarse = served.graph.shortest_path(zs, zg)
            except GraphError as e:
                raise RequestError(str(e)) from None
        path = nn_geodesic(served.model, zs, zg, init=coarse, mode=mode,
                           max_iterations=max_iterations, callback=callback,
                           should_stop=should_stop, n_out=50)
        if coarse is not None:
            path.stats["nodes_expanded"] = coarse.stats["nodes_expanded"]
        return self.decoded(served, path, zs, zg)

    def decoded(self, served, path, zs, zg):
        cfg = self.settings
        positions = self.run_model(served, "decode", path.points)
        times = time_parametrize(positions, cfg.max_joint_velocity,
                                 cfg.max_joint_acceleration or None)
        straight = polyline_length(served.model, np.stack([zs, zg]), per_segment=100)
        stats = {k: v for k, v in path.stats.items() if np.isscalar(v)}
        stats["method"] = path.method
        return PathResult(path.points, positions, times, list(served.joint_names),
                          path.length, straight, stats)
