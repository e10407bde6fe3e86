"""Active learning from model sensitivity and data uncertainty (Chen et al., IROS 2018).

A query is a latent point where the decoder is sensitive (a small latent step
makes a large jump in the robot's configuration: large magnification factor,
large stretch) *and* the data do not support the model (large decoder
variance, a decoded configuration far from every recorded one). Candidates lie
where the robot will move (graph edges, bridges across gaps, geodesics), in any
latent dimension; the decoder variance is an RBF precision network that grows
away from the data. Scores are normalised to [0, 1] over the candidate set and
combined with documented weights:

    sensitivity = mean(norm(log MF), norm(log stretch))
    uncertainty = mean(norm(log RBF decoder std), norm(log(1 + novelty)))
    score       = w_sensitivity * sensitivity + w_uncertainty * uncertainty
                  (defaults 0.5, 0.5; "mf" and "uncertainty" selectors use one term)

novelty is the distance from the decoded candidate to the nearest recorded
configuration (joints scaled by their spread), in units of the data's median
nearest-neighbour spacing: a data gap is a gap among configurations, wherever
the encoder put it. A batch is chosen greedily, each query counted as recorded
before the next is chosen (its novelty falls near the chosen ones only), so one
long gap gets several queries along it and a short one gets one.

stretch is the largest singular value of J: the largest ratio of Riemannian to
Euclidean length of any small latent step there (the pointwise limit of an
edge's Riemannian/Euclidean length ratio); for candidates on graph edges the
edge's own ratio is used.
"""
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from latent_geodesics.errors import ConfigError
from latent_geodesics.geometry.curves import subdivide
from latent_geodesics.geometry.metric import jacobian
from latent_geodesics.model.uncertainty import fit_rbf_precision

SELECTORS = ("combined", "random", "uncertainty", "mf")
WEIGHTS = {"sensitivity": 0.5, "uncertainty": 0.5}
DIVERSITY = 0.15   # batch spacing between decoded queries, x the data's joint spread


@dataclass(frozen=True)
class ScoreTerms:
    """Each candidate's score terms (see the module's formulas), all (M,) arrays."""
    log_mf: np.ndarray        # log magnification factor of the metric's Jacobian
    stretch: np.ndarray       # its largest singular value (an edge's own ratio where known)
    novelty: np.ndarray       # distance of the decoded candidate to the recorded data, in spacings
    decoder_std: np.ndarray   # the RBF decoder std, in units of the data's
    sensitivity: np.ndarray   # in [0, 1]
    uncertainty: np.ndarray   # in [0, 1]
    decoded: np.ndarray       # (M, Nx) the candidates' configurations
    scale: np.ndarray         # (Nx,) per joint: novelty 1 is one typical spacing

    @property
    def combined(self):
        return WEIGHTS["sensitivity"] * self.sensitivity + \
            WEIGHTS["uncertainty"] * self.uncertainty


@dataclass(frozen=True)
class ModelQuality:
    """A model's geodesics between evaluation pose pairs and its reconstruction: the
    round's figures in msg/RoundMetrics.msg."""
    smoothness: float      # mean over the pairs of the largest / mean joint step (1 = even)
    max_jump: float        # the worst pair's ratio
    max_step: float        # rad, the largest joint step (200 equal latent steps)
    max_log_mf: float      # the largest log magnification factor along them
    held_out_rmse: float   # rad

    def summary(self):
        """One log line's worth."""
        return ("smoothness %.3f (worst pair %.3f), largest step %.4f rad, largest log MF "
                "%.2f, held-out RMSE %.4f rad" % (self.smoothness, self.max_jump,
                                                   self.max_step, self.max_log_mf,
                                                   self.held_out_rmse))

    @classmethod
    def from_dict(cls, doc):
        """From the store's record; rounds stored before max_step existed have none (0)."""
        return cls(smoothness=doc["smoothness"], max_jump=doc["max_jump"],
                   max_step=doc.get("max_step", 0.0), max_log_mf=doc["max_log_mf"],
                   held_out_rmse=doc["held_out_rmse"])


@dataclass
class Queries:
    latent: np.ndarray      # (n, Nz)
    positions: np.ndarray   # (n, Nx) decoded configurations: what the teacher is asked about
    scores: np.ndarray      # (n,) the selector's scores of the chosen points
    selector: str


def candidates(model, graph, per_edge=3, per_bridge=16, n_geodesics=24,
               max_points=20000, seed=0):
    """Candidate latent points where the robot will move, in any latent dimension:
    along graph edges, densely along the bridges between components (they cross
    data gaps), and along graph node paths between random data pairs.
    Returns (points (M, Nz), edge_ratio (M,): an edge's Riemannian / Euclidean
    length ratio where the point lies on one, else NaN)."""
    z = graph.nodes
    rng = np.random.default_rng(seed)
    parts, ratios = [], []

    def along(edges, weights, count):
        t = (np.arange(count) + 1.0) / (count + 1)
        a, b = z[edges[:, 0]], z[edges[:, 1]]
        parts.append((a[:, None] + t[None, :, None] * (b - a)[:, None]).reshape(-1, z.shape[1]))
        ratios.append(np.repeat(weights / np.linalg.norm(b - a, axis=1).clip(1e-12), count))

    bridges = np.flatnonzero(graph.is_bridge)
    if len(bridges):
        along(graph.edges[bridges], graph.weights[bridges], per_bridge)
    plain = np.flatnonzero(~graph.is_bridge)
    take = rng.choice(plain, min(len(plain), max_points // (2 * per_edge)), replace=False)
    along(graph.edges[take], graph.weights[take], per_edge)
    for i, j in rng.choice(len(z), (n_geodesics, 2)):
        if i != j:
            # The node path: it follows the data and crosses gaps by bridges.
            path = graph.shortest_path(z[i], z[j], shorten=False)
            dense, _ = subdivide(path.points, 2 * graph.step)
            parts.append(dense[1:-1])
            ratios.append(np.full(len(dense) - 2, np.nan))
    # No "near the data" filter: a bridge's middle is far from the data by design,
    # and it is exactly where the robot will cross a gap.
    return np.vstack(parts), np.concatenate(ratios)


def normalise(values):
    v = np.asarray(values, dtype=np.float64)
    lo, hi = np.nanmin(v), np.nanmax(v)
    return np.zeros_like(v) if hi - lo < 1e-12 else (v - lo) / (hi - lo)


@torch.no_grad()
def decoder_uncertainty(model, graph, z):
    """The decoder's standard deviation in units of the data's at z, from an RBF
    precision network fitted at the graph's nodes: it grows away from the data.
    The served metric's own fit is used when it was made on the same nodes."""
    rbf = getattr(graph.decoder, "rbf", None)
    if rbf is None or len(rbf.fitted_on) != len(graph.nodes) or \
            not np.array_equal(rbf.fitted_on, graph.nodes):
        rbf = fit_rbf_precision(model, graph.nodes)
    return rbf(torch.as_tensor(z, dtype=torch.float32, device=rbf.centres.device)) \
        .double().cpu().numpy()


def scores(model, graph, points, edge_ratio=None, chunk=4096) -> ScoreTerms:
    """Per-candidate score terms and the candidates' decoded configurations."""
    log_mf, stretch = [], []
    for i in range(0, len(points), chunk):
        # The metric's Jacobian (graph.decoder): the geometry the served paths follow.
        sigma = torch.linalg.svdvals(jacobian(graph.decoder, points[i:i + chunk])).double().cpu()
        log_mf.append(torch.log(sigma).sum(-1).numpy())
        stretch.append(sigma[:, 0].numpy())
    log_mf, stretch = np.concatenate(log_mf), np.concatenate(stretch)
    if edge_ratio is not None:  # an edge's own Riemannian / Euclidean ratio where known
        stretch = np.where(np.isnan(edge_ratio), stretch, edge_ratio)
    decoded, recorded, scale = configurations(model, graph, points)
    novelty = nearest_distance(decoded / scale, recorded)
    variance = decoder_uncertainty(model, graph, points)
    sensitivity = (normalise(log_mf) + normalise(np.log(stretch + 1e-12))) / 2
    uncertainty = uncertainty_term(variance, novelty)
    return ScoreTerms(log_mf=log_mf, stretch=stretch, novelty=novelty, decoder_std=variance,
                      sensitivity=sensitivity, uncertainty=uncertainty, decoded=decoded,
                      scale=scale)


def uncertainty_term(decoder_std, novelty):
    return (normalise(np.log(decoder_std)) + normalise(np.log1p(novelty))) / 2


@torch.no_grad()
def configurations(model, graph, points):
    """(decoded candidates (M, Nx), recorded configurations / scale, scale (Nx,)):
    the scale is each joint's spread times the recorded data's median
    nearest-neighbour spacing in those units, so novelty 1 is one typical spacing."""
    decoded = model.decode(torch.as_tensor(points, dtype=torch.float32, device=model.device))
    spread = model.x_std.double().cpu().numpy()
    recorded = graph.node_x[:, :model.x_dim].double().cpu().numpy()
    sample = recorded[::max(1, len(recorded) // 2000)] / spread   # enough for a median
    spacing = np.median(nearest_distance(sample, recorded / spread, 1)) \
        if len(recorded) > 1 else 1.0
    scale = spread * max(float(spacing), 1e-9)
    return decoded.double().cpu().numpy(), recorded / scale, scale


def nearest_distance(points, data, skip=0, entries=1 << 25):
    """Distance from each point to its nearest datum (skip=1: its second nearest,
    for points taken from the data). A k-d tree in few dimensions; in many (images),
    where a tree degrades to brute force, matrix products over chunks of points
    (at most `entries` distances at a time)."""
    if data.shape[1] <= 16:
        return cKDTree(data).query(points, skip + 1)[0].reshape(len(points), -1)[:, skip]
    data_t = torch.as_tensor(data)
    chunk = max(1, entries // len(data))
    out = []
    for i in range(0, len(points), chunk):
        d = torch.cdist(torch.as_tensor(points[i:i + chunk]), data_t)
        out.append(d.topk(skip + 1, largest=False).values[:, skip].numpy())
    return np.concatenate(out)


def gap_filling_batch(terms, n, selector="combined"):
    """Greedy batch: the best candidate, then each next one scored as if the
    queries chosen so far had been recorded (novelty measured to them too).
    Returns (indices, the score of each when it was chosen)."""
    scaled = terms.decoded / terms.scale
    novelty = terms.novelty.copy()
    chosen, values = [], []
    for _ in range(min(n, len(scaled))):
        uncertainty = uncertainty_term(terms.decoder_std, novelty)
        value = uncertainty if selector == "uncertainty" else \
            WEIGHTS["sensitivity"] * terms.sensitivity + WEIGHTS["uncertainty"] * uncertainty
        value[chosen] = -np.inf
        k = int(np.argmax(value))
        chosen.append(k)
        values.append(float(value[k]))
        novelty = np.minimum(novelty, np.linalg.norm(scaled - scaled[k], axis=1))
    return np.array(chosen, dtype=int), np.array(values)


def diverse_top(points, values, n, radius, relax=0.5):
    """Greedy batch with non-maximum suppression: the best remaining candidate,
    then none closer than `radius` to one already chosen (points: decoded
    configurations, so several queries may share one long gap). When that
    leaves fewer than n, the radius shrinks by `relax` and the batch goes on
    (a model that decodes everything alike still gets n queries)."""
    values = np.asarray(values, dtype=np.float64)
    chosen = []
    while len(chosen) < min(n, len(points)):
        allowed = np.ones(len(points), dtype=bool)
        allowed[chosen] = False
        for k in chosen:
            allowed &= ((points - points[k]) ** 2).sum(1) >= radius ** 2
        while len(chosen) < n and allowed.any():
            k = int(np.flatnonzero(allowed)[np.argmax(values[allowed])])
            chosen.append(k)
            allowed &= ((points - points[k]) ** 2).sum(1) >= radius ** 2
        radius = radius * relax if radius > 1e-9 else 0.0
    return np.array(chosen, dtype=int)


def select_queries(model, graph, n, selector="combined", radius=None, seed=0):
    """n latent queries and their decoded configurations.

    combined and uncertainty: a gap-filling batch (see gap_filling_batch). mf,
    which has no data term, keeps queries apart in decoded configurations
    (radius in radians, default 15 % of the data's typical joint spread)."""
    if selector not in SELECTORS:
        raise ConfigError("selector must be one of %s, not %r" % (SELECTORS, selector))
    if not 1 <= int(n) <= 1000:
        raise ConfigError("number of queries must be 1..1000, not %s" % n)
    points, ratio = candidates(model, graph, seed=seed)
    if selector == "random":
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(points), min(n, len(points)), replace=False)
        values = np.zeros(len(chosen))
    elif selector == "mf":   # no data term: diversity by spacing alone
        terms = scores(model, graph, points, ratio)
        spread = float(np.linalg.norm(model.x_std.double().cpu().numpy()))
        chosen = diverse_top(terms.decoded, terms.sensitivity, n,
                             radius or DIVERSITY * spread)
        values = terms.sensitivity[chosen]
    else:
        chosen, values = gap_filling_batch(scores(model, graph, points, ratio), n, selector)
    latent = points[chosen]
    with torch.no_grad():
        q = model.decode(torch.as_tensor(latent, dtype=torch.float32, device=model.device))
    return Queries(latent, q.double().cpu().numpy(), values, selector)


def path_profile(model, graph, z_start, z_goal, n=200):
    """A graph geodesic decoded at n equal latent steps: (positions, log MF)."""
    from latent_geodesics.geometry.curves import resample
    from latent_geodesics.geometry.metric import log_magnification_factor
    path = graph.shortest_path(z_start, z_goal)
    dense = torch.as_tensor(resample(path.points, n))
    with torch.no_grad():
        z = dense.to(device=model.device, dtype=torch.float32)
        positions = model.decode(z).double().cpu().numpy()
    return positions, log_magnification_factor(model, z).double().cpu().numpy()


def jump_ratio(positions):
    """Largest joint step over the mean step along equally spaced latent samples:
    1 for a perfectly even motion, large where one latent step makes a jump."""
    steps = np.abs(np.diff(np.asarray(positions), axis=0)).max(axis=1)
    return float(steps.max() / max(steps.mean(), 1e-12))


def evaluate(model, graph, pose_pairs, held_out) -> ModelQuality:
    """Per-round metrics: geodesic smoothness (largest over mean step), the largest
    joint step (data units) of any pair's geodesic at 200 equal latent steps, the
    largest MF along them, held-out RMSE.

    pose_pairs: (P, 2, Nx) configurations; held_out: (M, Nx).
    """
    with torch.no_grad():
        flat = torch.as_tensor(np.reshape(pose_pairs, (-1, model.x_dim)), dtype=torch.float32,
                               device=model.device)
        z = model.encode(flat).double().cpu().numpy().reshape(len(pose_pairs), 2, -1)
        x = torch.as_tensor(held_out, dtype=torch.float32, device=model.device)
        rmse = float(((model.decode(model.encode(x)) - x) ** 2).mean().sqrt())
    jumps, steps, mfs = [], [], []
    for za, zb in z:
        positions, log_mf = path_profile(model, graph, za, zb)
        jumps.append(jump_ratio(positions))
        steps.append(np.abs(np.diff(positions, axis=0)).max())
        mfs.append(log_mf.max())
    return ModelQuality(smoothness=float(np.mean(jumps)), max_jump=float(np.max(jumps)),
                        max_step=float(np.max(steps)), max_log_mf=float(np.max(mfs)),
                        held_out_rmse=rmse)
