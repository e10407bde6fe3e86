"""A built graph on disk: one npz, written atomically, tagged with its settings and
model, and validated on load so that a tampered or damaged file never reaches the
search."""
import json

import numpy as np
import torch

from .curves import to_numpy
from .errors import GraphError, is_number
from .files import atomic_write
from .geometry import decoder_device_dtype

FILE_VERSION = 2


def save_graph(graph, path, model_id=""):
    """Write the built graph (npz) atomically, tagged with settings and model."""
    meta = {"version": FILE_VERSION, "k": graph.k, "n_samples": graph.n_samples,
            "model_id": model_id, "reach": graph.reach, "step": graph.step,
            "outside_factor": graph.outside_factor}
    arrays = {"nodes": graph.nodes, "edges": graph.edges, "weights": graph.weights,
              "is_bridge": graph.is_bridge, "node_x": graph.node_x.double().cpu().numpy()}
    atomic_write(path, lambda f: np.savez(f, **arrays, meta=np.array(json.dumps(meta))))


def read_graph(path, k=None, n_samples=None, model_id=None, nodes=None):
    """(meta, arrays) of a saved graph; GraphError if it was built for another model
    or settings, or if its contents are not a valid graph."""
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            arrays = {key: f[key] for key in ("nodes", "edges", "weights", "is_bridge",
                                              "node_x")}
    except Exception as e:
        raise GraphError("graph file %s is unreadable: %s" % (path, e)) from None
    if not isinstance(meta, dict) or meta.get("version") != FILE_VERSION:
        raise GraphError("graph file %s has version %r" % (path, meta.get("version")
                                                           if isinstance(meta, dict) else None))
    for name, want in (("k", k), ("n_samples", n_samples), ("model_id", model_id)):
        if want is not None and meta.get(name) != want:
            raise GraphError("graph file %s was built with %s=%r, not %r"
                             % (path, name, meta.get(name), want))
    if nodes is not None and not np.array_equal(to_numpy(nodes), arrays["nodes"]):
        raise GraphError("graph file %s was built on other nodes" % path)
    _validate(path, meta, arrays)
    return meta, arrays


def load_graph(cls, path, decoder, options=None, **expected):
    """A LatentGraph (cls) from a saved file, checked against the decoder; options:
    settings to serve it with (outside_factor, relax_iterations)."""
    meta, arrays = read_graph(path, **expected)
    options = {"outside_factor": meta["outside_factor"], **(options or {})}
    device, dtype = decoder_device_dtype(decoder)
    node_x = torch.as_tensor(arrays["node_x"], device=device, dtype=dtype or torch.float64)
    graph = cls.from_arrays(decoder, arrays["nodes"], node_x, arrays["edges"].astype(np.int64),
                            arrays["weights"], arrays["is_bridge"].astype(bool),
                            k=meta["k"], n_samples=meta["n_samples"], reach=meta["reach"],
                            step=meta["step"], **options)
    probe = graph._decode(graph.nodes[:16]).double().cpu().numpy()
    scale = 1e-4 * (1.0 + np.abs(arrays["node_x"][:16]).max())
    if probe.shape != arrays["node_x"][:16].shape or \
            not np.allclose(probe, arrays["node_x"][:16], atol=scale):
        raise GraphError("graph file %s was built for another decoder" % path)
    if graph.n_components != 1:
        raise GraphError("graph file %s holds a disconnected graph" % path)
    return graph


def _validate(path, meta, arrays):
    """GraphError unless the arrays form a graph the search can trust."""
    nodes, edges, weights = arrays["nodes"], arrays["edges"], arrays["weights"]
    n = len(nodes)
    problems = []
    if nodes.ndim != 2 or n < 2 or not np.isfinite(nodes).all():
        problems.append("nodes are not a finite (N >= 2, Nz) array")
    if arrays["node_x"].ndim != 2 or len(arrays["node_x"]) != n \
            or not np.isfinite(arrays["node_x"]).all():
        problems.append("node decodings do not match the nodes")
    if edges.ndim != 2 or edges.shape[1:] != (2,) or not np.issubdtype(edges.dtype, np.integer):
        problems.append("edges are not an (E, 2) integer array")
    elif len(edges) and (edges.min() < 0 or edges.max() >= n):
        problems.append("edge indices outside 0..%d" % (n - 1))
    if weights.shape != (len(edges),) or arrays["is_bridge"].shape != (len(edges),):
        problems.append("edge weights or bridge flags do not match the edges")
    elif not (np.isfinite(weights).all() and (weights > 0).all()):
        problems.append("edge weights that are not finite and positive")
    for key in ("reach", "step", "outside_factor"):
        value = meta.get(key)
        if not is_number(value) or value <= 0:
            problems.append("%s = %r" % (key, value))
    if problems:
        raise GraphError("graph file %s is invalid: %s" % (path, "; ".join(problems)))
