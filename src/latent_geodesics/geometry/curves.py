"""Latent polylines shared by both geodesic methods: the result type, measuring,
shortcutting and relaxing.

Every length here is measured by one LatentMetric (geometry.py): the decoded
length of a latent polyline whose segments are subdivided so that no latent
sub-step exceeds `step`, for the straight line, the raw graph path and every
refinement alike, so "never longer than" compares like with like. Functions take
a metric or a decoder (the plain pullback through it).
"""
from dataclasses import dataclass, field

import numpy as np
import torch

from latent_geodesics.errors import PointError
from latent_geodesics.geometry.metric import LatentMetric, segment_pieces, split, subdivide

__all__ = ["Geodesic", "PathStats", "best_candidate", "check_point", "relax", "resample",
           "shortcut", "shortcut_segments", "shortest_chain", "smooth", "split", "subdivide",
           "to_numpy"]


@dataclass
class PathStats:
    """What finding a latent path measured (typed: a misspelt figure fails where it is
    written, not as a silent default); one a method does not produce keeps its default."""
    time: float = 0.0            # s spent finding the path
    nodes_expanded: int = 0      # nodes the graph search settled (0: no graph search)
    bridges: int = 0             # bridge edges (across gaps in the data) on the path
    node_path: list = field(default_factory=list)   # graph nodes the search's path visits
    candidate: str = ""          # which candidate was kept ("": there was no choice)
    straight_length: float = float("nan")   # the straight line under the same measure
    iterations: int = 0          # refinement iterations
    cancelled: bool = False      # a refinement stopped on request: the best curve so far
    query_path: list = field(default_factory=list)  # the search's path; query ends: n, n + 1


@dataclass
class Geodesic:
    """A latent path: points[0] = start, points[-1] = goal, its decoded length."""
    points: np.ndarray
    length: float
    method: str
    stats: PathStats = field(default_factory=PathStats)


def to_numpy(points):
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    return np.asarray(points, dtype=np.float64)


def check_point(z, dim, what="point", error=PointError):
    z = to_numpy(z).reshape(-1) if np.ndim(z) else np.array([np.nan])
    if z.size != dim:
        raise error("%s has dimension %d, the latent space has %d" % (what, z.size, dim))
    if not np.isfinite(z).all():
        raise error("%s holds NaN or inf" % what)
    return z


SHORTCUT_PIECES = 8   # at most this many pieces measure a candidate direct segment


def shortcut(metric, points, hop_lengths, step, window=6):
    """Replace sub-paths by direct latent segments where those decode shorter
    (shortcut_segments); returns the kept points."""
    points = to_numpy(points)
    return points[shortcut_segments(metric, points, hop_lengths, step, window)[0]]


def shortcut_segments(metric, points, hop_lengths, step, window=6, embedded=None,
                      skip=None, pieces=SHORTCUT_PIECES):
    """The shortest chain of direct segments and original hops along a path.

    points: (m, Nz) a path; hop_lengths: (m-1,) the decoded length of each hop.
    A dynamic programme over all jumps i -> j (j - i <= window) finds it, each
    jump measured with at most `pieces` pieces.
    embedded: the points' embeddings (m, D), where the caller has them (only the
    segments' interior points are embedded); skip(ii, jj): a mask of jumps known
    not to be shorter than their hops (not measured).
    Returns (indices of the kept points, each kept segment's length: the hop's, or
    the direct segment's where it was measured at the full resolution, else NaN).
    """
    points = to_numpy(points)
    m = len(points)
    hops = np.asarray(hop_lengths, dtype=np.float64)
    if m <= 2:
        return np.arange(m), hops[:max(m - 1, 0)].copy()
    ii, jj = np.triu_indices(m, 2)
    near = jj - ii <= window
    if skip is not None:
        near &= ~np.asarray(skip(ii, jj), dtype=bool)
    ii, jj = ii[near], jj[near]
    xa, xb = (None, None) if embedded is None else (embedded[ii], embedded[jj])
    direct = LatentMetric.of(metric).segment_lengths(points[ii], points[jj], step,
                                                     pieces, xa, xb)
    exact = segment_pieces(points[ii], points[jj], step) <= pieces
    return shortest_chain(hops, ii, jj, direct, np.where(exact, direct, np.nan))


def shortest_chain(hops, ii, jj, lengths, exact=None):
    """The chain of hops (i, i + 1) and jumps (ii[k], jj[k]) from the first point to
    the last of the least total length (a dynamic programme in point order; the
    earlier of equal chains). Returns (indices of the kept points, each kept
    segment's length: the hop's, or the jump's `exact` (default: its length))."""
    m = len(hops) + 1
    exact = lengths if exact is None else exact
    cost = {(i, i + 1): (float(w), float(w)) for i, w in enumerate(hops)}
    cost.update({(int(i), int(j)): (float(w), float(e))
                 for i, j, w, e in zip(ii, jj, lengths, exact)})
    into = [[] for _ in range(m)]
    for (i, j), (w, _) in cost.items():
        into[j].append((i, w))
    best, prev = np.full(m, np.inf), np.zeros(m, dtype=int)
    best[0] = 0.0
    for j in range(1, m):
        for i, w in into[j]:
            if best[i] + w < best[j]:
                best[j], prev[j] = best[i] + w, i
    keep = [m - 1]
    while keep[-1] != 0:
        keep.append(prev[keep[-1]])
    keep = np.array(keep[::-1])
    return keep, np.array([cost[(int(i), int(j))][1] for i, j in zip(keep[:-1], keep[1:])])


def smooth(points, n=None, degree=3):
    """A clamped B-spline with the polyline as its control polygon, sampled at n points.

    It starts and ends at the polyline's ends, stays in its convex hull (no
    overshoot) and has continuous curvature, so a time parameterisation does
    not have to stop at the polyline's corners.
    """
    from scipy.interpolate import BSpline
    points = to_numpy(points)
    m = len(points)
    if m <= 2:
        return points
    degree = min(degree, m - 1)
    knots = np.r_[np.zeros(degree), np.linspace(0, 1, m - degree + 1), np.ones(degree)]
    out = BSpline(knots, points, degree)(np.linspace(0, 1, n or 8 * m))
    out[0], out[-1] = points[0], points[-1]
    return out


def resample(points, n):
    """n points equidistant in latent length along a polyline (ends kept exactly)."""
    points = to_numpy(points)
    s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))]
    if s[-1] <= 0:
        return np.repeat(points[:1], n, 0)
    t = np.linspace(0.0, s[-1], n)
    out = np.stack([np.interp(t, s, points[:, d]) for d in range(points.shape[1])], 1)
    out[0], out[-1] = points[0], points[-1]
    return out


def relax(metric, points, step, knots=16, iterations=10, tol=1e-4, should_stop=None,
          callback=None, max_sub=4):
    """Minimise the discrete curve energy of a polyline with fixed ends.

    The path is resampled to `knots` points; each segment is cut into equal
    sub-steps no longer than `step` (decided once, at most `max_sub`) so the
    energy sees the decoder between knots and the curve cannot cut through an
    unmeasured region. Energy minimisers are constant-speed geodesics. The
    energy is a sum of squares, so Levenberg-Marquardt (Gauss-Newton with
    damping) converges in a few steps, each one batched decoding for the
    Jacobians (forward differences: Gauss-Newton needs only a direction; every
    step is accepted on the exact energy) and one small linear solve.
    Returns (points, iterations).
    """
    z = to_numpy(resample(points, knots))
    total = np.linalg.norm(np.diff(z, axis=0), axis=1).sum()
    sub = int(np.clip(np.ceil(total / (knots - 1) / step), 1, max_sub))
    # The small linear algebra runs in torch (float64, CPU): numpy's BLAS threads
    # would contend with torch's own for the same cores.
    weights = torch.as_tensor(_interpolation_weights(knots, sub))   # dense = W @ knots
    z = torch.as_tensor(z)
    inner = slice(1, knots - 1)

    metric = LatentMetric.of(metric)

    def residuals(knots_z):   # the energy's steps: (n - 1) x their squared sum
        with torch.no_grad():
            return metric.displacements(weights @ knots_z).double().cpu()

    r = residuals(z)
    energy, damping, done = float((r ** 2).sum()), 1e-3, 0
    for done in range(1, iterations + 1):
        J = forward_jacobian(metric, weights @ z)                     # (M, Nx, Nz)
        JF = torch.einsum("kj,kxz->kxjz", weights, J)                  # dF_k / dknot_j
        A = (JF[1:] - JF[:-1])[:, :, inner].reshape(r.numel(), -1)
        H, g = A.T @ A, A.T @ r.reshape(-1)
        eye = torch.eye(len(H), dtype=H.dtype)
        improved = False
        for _ in range(8):   # raise the damping until the energy drops
            delta = torch.linalg.solve(H + damping * (torch.diag(torch.diag(H)) + 1e-9 * eye), -g)
            trial = z.clone()
            trial[inner] += delta.reshape(knots - 2, -1)
            r_trial = residuals(trial)
            e_trial = float((r_trial ** 2).sum())
            if np.isfinite(e_trial) and e_trial < energy:
                improved = True
                break
            damping *= 10
        if not improved:
            break
        gain = (energy - e_trial) / energy
        z, r, energy, damping = trial, r_trial, e_trial, max(damping / 10, 1e-7)
        if callback is not None:
            callback(done, (len(weights) - 1) * energy)
        if gain < tol or (should_stop is not None and should_stop()):
            break
    return z.numpy(), done


@torch.no_grad()
def forward_jacobian(metric, z, h=1e-3):
    """(M, Nx, Nz) Jacobians by forward differences, all in one batched decoding."""
    m, nz = z.shape
    shifted = z[None] + h * torch.eye(nz, dtype=z.dtype)[:, None, :]  # (Nz, M, Nz)
    x = metric.embed(torch.cat([z[None], shifted]).reshape(-1, nz)).double().cpu()
    x = x.reshape(nz + 1, m, -1)
    return ((x[1:] - x[0]) / h).permute(1, 2, 0)


def _interpolation_weights(knots, sub):
    """W (M, knots): dense point k = (1 - t) knot_i + t knot_{i+1}, sub pieces a segment."""
    m = (knots - 1) * sub + 1
    W = np.zeros((m, knots))
    k = np.arange(m - 1)
    seg, t = k // sub, (k % sub) / sub
    W[k, seg], W[k, seg + 1] = 1 - t, t
    W[-1, -1] = 1.0
    return W


def best_candidate(metric, candidates, step):
    """The shortest of named latent polylines under one measure:
    (name, points, length, {name: length}).

    candidates: (name, points) or (name, points, known), known (m-1,): its segments'
    lengths already measured at this resolution (NaN: not). Whatever is not known,
    whole polylines and single segments, is measured in one embedding."""
    runs, owner = [], []
    totals = np.zeros(len(candidates))
    for c, (_, pts, *known) in enumerate(candidates):
        if not known or known[0] is None:
            runs.append(pts), owner.append(c)
            continue
        missing = np.isnan(known[0])
        totals[c] = known[0][~missing].sum()
        for s in np.flatnonzero(missing):
            runs.append(pts[s:s + 2]), owner.append(c)
    if runs:
        np.add.at(totals, owner, LatentMetric.of(metric).polyline_lengths(runs, step))
    measured = [(float(length), name, pts)
                for length, (name, pts, *_) in zip(totals, candidates)]
    length, name, pts = min(measured, key=lambda c: c[0])
    return name, pts, length, {key: value for value, key, _ in measured}
