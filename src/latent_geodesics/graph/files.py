"""A built graph on disk: one npz, written atomically, tagged with its settings and
model, and validated on load so that a tampered or damaged file never reaches the
search.

The file is bound to its model: its digest is a SHA-256 over the model's identity
(model_id: the hash of the weights and latents it was built from) and every array
and setting in it, so a well-formed file edited afterwards, or assembled for other
weights, does not match. As the digest can be recomputed by whoever can read the
model, a load also measures a random sample of edges again with the decoder: a
file whose lengths were made up is refused even with a matching digest.
"""
import hashlib
import json

import numpy as np
import torch

from latent_geodesics.errors import GraphError, is_number
from latent_geodesics.files import atomic_write
from latent_geodesics.geometry.curves import to_numpy
from latent_geodesics.geometry.metric import decoder_device_dtype
from latent_geodesics.graph.bridges import BRIDGE_CAP, MIN_WEIGHT

FILE_VERSION = 3
ARRAYS = ("nodes", "edges", "weights", "is_bridge", "node_x")
SPOT_CHECKED_EDGES = 32   # edges measured again on every load, chosen at random
SPOT_CHECK_RTOL = 1e-3    # a graph built on another device decodes a little differently


def save_graph(graph, path, model_id=""):
    """Write the built graph (npz) atomically, tagged with settings and model."""
    meta = {"version": FILE_VERSION, "k": graph.k, "n_samples": graph.n_samples,
            "model_id": model_id, "reach": graph.reach, "step": graph.step,
            "outside_factor": graph.outside_factor}
    arrays = {"nodes": graph.nodes, "edges": graph.edges, "weights": graph.weights,
              "is_bridge": graph.is_bridge, "node_x": graph.node_x.double().cpu().numpy()}
    meta["digest"] = digest(meta, arrays)
    atomic_write(path, lambda f: np.savez(f, **arrays, meta=np.array(json.dumps(meta))))


def digest(meta, arrays):
    """SHA-256 over the settings and model_id (meta, its own digest left out) and
    each array's name, type, shape and bytes."""
    h = hashlib.sha256(json.dumps({k: v for k, v in meta.items() if k != "digest"},
                                  sort_keys=True).encode())
    for key in ARRAYS:
        a = np.ascontiguousarray(arrays[key])
        h.update(("%s %s %s;" % (key, a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def read_graph(path, k=None, n_samples=None, model_id=None, nodes=None):
    """(meta, arrays) of a saved graph; GraphError if it was built for another model
    or settings, or if its contents are not a valid graph."""
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            arrays = {key: f[key] for key in ARRAYS}
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
    if meta.get("digest") != digest(meta, arrays):
        raise GraphError("graph file %s does not match its digest: it was changed after it "
                         "was written, or written for other weights" % path)
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
    _spot_check(graph, path)
    return graph


def _spot_check(graph, path):
    """GraphError unless a random sample of edges has the decoded lengths the file
    says, each measured as it was built (by the graph's metric at its step; bridges
    in up to BRIDGE_CAP pieces)."""
    pick = np.random.default_rng().choice(len(graph.edges), min(SPOT_CHECKED_EDGES,
                                                                len(graph.edges)), replace=False)
    a, b = graph.nodes[graph.edges[pick, 0]], graph.nodes[graph.edges[pick, 1]]
    bridge = graph.is_bridge[pick]
    measured = np.empty(len(pick))
    if (~bridge).any():
        measured[~bridge] = graph._edge_lengths(a[~bridge], b[~bridge])
    if bridge.any():
        measured[bridge] = np.maximum(graph.metric.segment_lengths(
            a[bridge], b[bridge], graph.step, cap=BRIDGE_CAP), MIN_WEIGHT)
    if not np.allclose(measured, graph.weights[pick], rtol=SPOT_CHECK_RTOL, atol=1e-9):
        raise GraphError("graph file %s: edge lengths do not match the decoder (measured "
                         "again): it was not built by this model" % path)


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
