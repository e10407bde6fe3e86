"""The ROS-free heart of the geodesic server: a model (and its graph), request
checking, and the queries the node offers. The node only converts messages.

Every query checks its input and raises RequestError with a message a user can
act on; the node turns that into success=False. The served model is held as one
immutable `Served` record that `reload` swaps in one assignment, so a request
in flight finishes on the pair it started with.
"""
import threading
from dataclasses import dataclass

import numpy as np
import torch

from .model import load_model


class RequestError(ValueError):
    """A request the server refuses; the message says why."""


@dataclass(frozen=True)
class Served:
    model: object
    joint_names: tuple
    graph: object = None


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
    def __init__(self, model_dir, device="auto", joint_names=None, build_graph=None):
        """`build_graph(model) -> graph or None` is called on load and reload."""
        self.device = device
        self.joint_names_override = list(joint_names or [])
        self.build_graph = build_graph
        self._swap_lock = threading.Lock()
        self.served = self._load(model_dir)

    def _load(self, model_dir):
        model = load_model(model_dir, self.device)
        names = self.joint_names_override or model.joint_names
        if len(names) != model.x_dim:
            raise RequestError("%d joint names given for a model of %d joints"
                               % (len(names), model.x_dim))
        graph = self.build_graph(model) if self.build_graph else None
        return Served(model, tuple(names), graph)

    def reload(self, model_dir=None):
        """Load a new model (and graph) beside the old, then swap atomically."""
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

    # --- queries ----------------------------------------------------------
    def encode(self, joint_names, positions):
        served = self.served
        q = self.configurations(served, joint_names, positions)
        with torch.no_grad():
            z = served.model.encode(torch.as_tensor(q, dtype=torch.float32,
                                                    device=served.model.device))
        return served.model.z_dim, z.cpu().double().numpy()

    def decode(self, latent):
        served = self.served
        z = self.latent_points(served, latent)
        with torch.no_grad():
            x = served.model.decode(torch.as_tensor(z, dtype=torch.float32,
                                                    device=served.model.device))
        return list(served.joint_names), x.cpu().double().numpy()
