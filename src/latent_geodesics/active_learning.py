"""Active learning from model sensitivity and data uncertainty (Chen et al., IROS 2018).

A query is a latent point where the decoder is sensitive (a small latent step
makes a large jump in the robot's configuration: large magnification factor,
large stretch) *and* the data do not support the model (large decoder
variance, far from any encoded datum). Scores are normalised to [0, 1] over
the candidate set and combined with documented weights:

    sensitivity = mean(norm(log MF), norm(log stretch))
    uncertainty = mean(norm(decoder std), norm(distance to the nearest datum))
    score       = w_sensitivity * sensitivity + w_uncertainty * uncertainty
                  (defaults 0.5, 0.5; "mf" and "uncertainty" selectors use one term)

stretch is the largest singular value of J: the largest ratio of Riemannian to
Euclidean length of any small latent step there (the pointwise limit of an
edge's Riemannian/Euclidean length ratio); for candidates on graph edges the
edge's own ratio is used.
"""
from dataclasses import dataclass

import numpy as np
import torch

from .geometry import jacobian

SELECTORS = ("combined", "random", "uncertainty", "mf")
WEIGHTS = {"sensitivity": 0.5, "uncertainty": 0.5}


@dataclass
class Queries:
    latent: np.ndarray      # (n, Nz)
    positions: np.ndarray   # (n, Nx) decoded configurations: what the teacher is asked about
    scores: np.ndarray      # (n,) the selector's scores of the chosen points
    selector: str


def candidates(model, graph, grid=64, per_edge=3, max_points=20000, seed=0):
    """Candidate latent points near the data (within the graph's reach).

    2-D: a grid over the data's bounding box. Higher dimensions: points along
    the graph's edges and Gaussian perturbations around the data. Returns
    (points (M, Nz), edge_ratio (M,) or None).
    """
    z = graph.nodes
    rng = np.random.default_rng(seed)
    if z.shape[1] == 2:
        lo, hi = z.min(0), z.max(0)
        axes = [np.linspace(lo[d], hi[d], grid) for d in range(2)]
        points = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
        ratio = None
    else:
        take = rng.choice(len(graph.edges), min(len(graph.edges), max_points // (2 * per_edge)),
                          replace=False)
        edges, weights = graph.edges[take], graph.weights[take]
        t = (np.arange(per_edge) + 1.0) / (per_edge + 1)
        a, b = z[edges[:, 0]], z[edges[:, 1]]
        on_edges = (a[:, None] + t[None, :, None] * (b - a)[:, None]).reshape(-1, z.shape[1])
        latent_len = np.linalg.norm(b - a, axis=1).clip(1e-12)
        around = z[rng.integers(len(z), size=len(on_edges))] + \
            rng.normal(0, graph.reach, (len(on_edges), z.shape[1]))
        points = np.vstack([on_edges, around])
        ratio = np.r_[np.repeat(weights / latent_len, per_edge), np.full(len(around), np.nan)]
    near = graph.tree.query(points)[0] <= graph.outside_factor * graph.reach
    return points[near], (None if ratio is None else ratio[near])


def normalise(values):
    v = np.asarray(values, dtype=np.float64)
    lo, hi = np.nanmin(v), np.nanmax(v)
    return np.zeros_like(v) if hi - lo < 1e-12 else (v - lo) / (hi - lo)


@torch.no_grad()
def decoder_uncertainty(model, z):
    """Mean decoder standard deviation over joints, in units of each joint's data std."""
    zt = torch.as_tensor(z, dtype=torch.float32, device=model.device)
    return (model.decode_std(zt) / model.x_std).mean(-1).double().cpu().numpy()


def scores(model, graph, points, edge_ratio=None, chunk=4096):
    """Per-candidate terms and combined scores (dict of (M,) arrays)."""
    log_mf, stretch = [], []
    for i in range(0, len(points), chunk):
        sigma = torch.linalg.svdvals(jacobian(model, points[i:i + chunk])).double().cpu()
        log_mf.append(torch.log(sigma).sum(-1).numpy())
        stretch.append(sigma[:, 0].numpy())
    log_mf, stretch = np.concatenate(log_mf), np.concatenate(stretch)
    if edge_ratio is not None:  # an edge's own Riemannian / Euclidean ratio where known
        stretch = np.where(np.isnan(edge_ratio), stretch, edge_ratio)
    distance = graph.tree.query(points)[0]
    variance = decoder_uncertainty(model, points)
    sensitivity = (normalise(log_mf) + normalise(np.log(stretch + 1e-12))) / 2
    uncertainty = (normalise(variance) + normalise(distance)) / 2
    return {"log_mf": log_mf, "stretch": stretch, "distance": distance,
            "decoder_std": variance, "sensitivity": sensitivity, "uncertainty": uncertainty,
            "combined": WEIGHTS["sensitivity"] * sensitivity
            + WEIGHTS["uncertainty"] * uncertainty}


def diverse_top(points, values, n, radius):
    """Greedy batch with non-maximum suppression: the best remaining candidate,
    then none closer than `radius` to one already chosen."""
    values = np.asarray(values, dtype=np.float64).copy()
    allowed = np.ones(len(points), dtype=bool)
    chosen = []
    while len(chosen) < n and allowed.any():
        k = int(np.flatnonzero(allowed)[np.argmax(values[allowed])])
        chosen.append(k)
        allowed &= ((points - points[k]) ** 2).sum(1) >= radius ** 2
    return np.array(chosen, dtype=int)


def select_queries(model, graph, n, selector="combined", radius=None, seed=0):
    """n latent queries and their decoded configurations."""
    if selector not in SELECTORS:
        raise ValueError("selector must be one of %s, not %r" % (SELECTORS, selector))
    if not 1 <= int(n) <= 1000:
        raise ValueError("number of queries must be 1..1000, not %s" % n)
    points, ratio = candidates(model, graph, seed=seed)
    if selector == "random":
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(points), min(n, len(points)), replace=False)
        values = np.zeros(len(points))
    else:
        terms = scores(model, graph, points, ratio)
        values = terms[{"combined": "combined", "uncertainty": "uncertainty",
                        "mf": "sensitivity"}[selector]]
        extent = np.ptp(graph.nodes, axis=0).max()
        chosen = diverse_top(points, values, n, radius or 0.08 * extent)
    latent = points[chosen]
    with torch.no_grad():
        q = model.decode(torch.as_tensor(latent, dtype=torch.float32, device=model.device))
    return Queries(latent, q.double().cpu().numpy(), values[chosen], selector)


def path_profile(model, graph, z_start, z_goal, n=200):
    """A graph geodesic decoded at n equal latent steps: (positions, log MF)."""
    from .geometry import log_magnification_factor, resample
    path = graph.shortest_path(z_start, z_goal)
    dense = resample(torch.as_tensor(path.points), n)
    with torch.no_grad():
        z = dense.to(device=model.device, dtype=torch.float32)
        positions = model.decode(z).double().cpu().numpy()
    return positions, log_magnification_factor(model, z).double().cpu().numpy()


def jump_ratio(positions):
    """Largest joint step over the mean step along equally spaced latent samples:
    1 for a perfectly even motion, large where one latent step makes a jump."""
    steps = np.abs(np.diff(np.asarray(positions), axis=0)).max(axis=1)
    return float(steps.max() / max(steps.mean(), 1e-12))


def evaluate(model, graph, pose_pairs, held_out):
    """Per-round metrics: geodesic smoothness, largest MF along them, held-out RMSE.

    pose_pairs: (P, 2, Nx) configurations; held_out: (M, Nx).
    """
    with torch.no_grad():
        flat = torch.as_tensor(np.reshape(pose_pairs, (-1, model.x_dim)), dtype=torch.float32,
                               device=model.device)
        z = model.encode(flat).double().cpu().numpy().reshape(len(pose_pairs), 2, -1)
        x = torch.as_tensor(held_out, dtype=torch.float32, device=model.device)
        rmse = float(((model.decode(model.encode(x)) - x) ** 2).mean().sqrt())
    jumps, mfs = [], []
    for za, zb in z:
        positions, log_mf = path_profile(model, graph, za, zb)
        jumps.append(jump_ratio(positions))
        mfs.append(log_mf.max())
    return {"smoothness": float(np.mean(jumps)), "max_jump": float(np.max(jumps)),
            "max_log_mf": float(np.max(mfs)), "held_out_rmse": rmse}
