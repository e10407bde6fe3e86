"""Latent polylines shared by both geodesic methods: the result type, measuring,
shortcutting and relaxing.

Every length here is the decoded length of a latent polyline whose segments are
subdivided so that no latent sub-step exceeds `step`: one measure for the
straight line, the raw graph path and every refinement, so "never longer than"
compares like with like.
"""
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import PointError
from .geometry import as_points, decode

MAX_MEASURE_POINTS = 20000   # a measure's resolution is coarsened beyond this


@dataclass
class Geodesic:
    """A latent path: points[0] = start, points[-1] = goal, its decoded length."""
    points: np.ndarray
    length: float
    method: str
    stats: dict = field(default_factory=dict)


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


def subdivide(points, step, max_points=MAX_MEASURE_POINTS):
    """The polyline (m, Nz) with each segment cut into pieces no longer than step.

    Returns (dense points, index of each original point in them).
    """
    points = to_numpy(points)
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    return split(points, np.ceil(seg / step), max_points)


def split(points, pieces, max_points=MAX_MEASURE_POINTS):
    """Cut segment i of a polyline into pieces[i] equal parts (at least one);
    the total is capped at max_points by coarsening evenly.

    Returns (dense points, index of each original point in them).
    """
    points = to_numpy(points)
    pieces = np.maximum(1, np.asarray(pieces)).astype(int)
    if pieces.sum() + 1 > max_points:
        pieces = np.maximum(1, np.floor(pieces * (max_points - 1) / pieces.sum())).astype(int)
    knots = np.r_[0, np.cumsum(pieces)]
    seg_of = np.repeat(np.arange(len(pieces)), pieces)
    frac = (np.arange(knots[-1]) - knots[seg_of]) / pieces[seg_of]
    dense = points[seg_of] + frac[:, None] * (points[seg_of + 1] - points[seg_of])
    return np.vstack([dense, points[-1:]]), knots


@torch.no_grad()
def measure(decoder, points, step):
    """Decoded length of a latent polyline at latent resolution `step`."""
    return measure_many(decoder, [points], step)[0]


@torch.no_grad()
def measure_many(decoder, polylines, step):
    """Decoded lengths of several latent polylines, in one batched decoding."""
    dense = [subdivide(points, step)[0] for points in polylines]
    return _ragged_lengths(decoder, np.vstack(dense), [len(d) for d in dense])


def _ragged_lengths(decoder, points, sizes):
    """Decoded lengths of consecutive runs of `sizes` points, one decoding for all."""
    x = decode(decoder, as_points(points, decoder))
    steps = (x[1:] - x[:-1]).norm(dim=-1).double().cpu().numpy()
    run = np.repeat(np.arange(len(sizes)), sizes)
    inside = run[1:] == run[:-1]     # a step that joins two runs is no step
    return np.bincount(run[1:][inside], steps[inside], minlength=len(sizes))


@torch.no_grad()
def segment_lengths(decoder, za, zb, step, cap=64):
    """Decoded lengths of straight segments za[i] -> zb[i] (E, Nz), each at
    resolution `step` with at most `cap` pieces, all in one batched decoding."""
    za, zb = to_numpy(za), to_numpy(zb)
    if len(za) == 0:
        return np.zeros(0)
    pieces = np.clip(np.ceil(np.linalg.norm(zb - za, axis=1) / step), 1, cap).astype(int)
    seg = np.repeat(np.arange(len(za)), pieces + 1)
    first = np.r_[0, np.cumsum(pieces + 1)[:-1]]
    t = (np.arange(len(seg)) - first[seg]) / pieces[seg]
    z = za[seg] + t[:, None] * (zb[seg] - za[seg])
    return _ragged_lengths(decoder, z, pieces + 1)


def shortcut(decoder, points, hop_lengths, step, window=6):
    """Replace sub-paths by direct latent segments where those decode shorter.

    points: (m, Nz) a path; hop_lengths: (m-1,) the decoded length of each hop.
    A dynamic programme over all jumps i -> j (j - i <= window) finds the
    shortest chain of direct segments and original hops. Returns the kept points.
    """
    points = to_numpy(points)
    m = len(points)
    if m <= 2:
        return points
    ii, jj = np.triu_indices(m, 2)
    near = jj - ii <= window
    ii, jj = ii[near], jj[near]
    direct = segment_lengths(decoder, points[ii], points[jj], step, cap=8)
    cost = {(i, i + 1): float(w) for i, w in enumerate(hop_lengths)}
    cost.update({(int(i), int(j)): float(w) for i, j, w in zip(ii, jj, direct)
                 if w < cost.get((int(i), int(j)), np.inf)})
    into = [[] for _ in range(m)]
    for (i, j), w in cost.items():
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
    return points[keep[::-1]]


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


def relax(decoder, points, step, knots=16, iterations=10, tol=1e-4, should_stop=None,
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

    def residuals(knots_z):
        return torch.diff(decoded(decoder, weights @ knots_z), dim=0)

    r = residuals(z)
    energy, damping, done = float((r ** 2).sum()), 1e-3, 0
    for done in range(1, iterations + 1):
        J = forward_jacobian(decoder, weights @ z)                     # (M, Nx, Nz)
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
def decoded(decoder, z):
    """Decode float64 CPU points, back to float64 on the CPU."""
    return decode(decoder, as_points(z, decoder)).double().cpu()


def forward_jacobian(decoder, z, h=1e-3):
    """(M, Nx, Nz) Jacobians by forward differences, all in one batched decoding."""
    m, nz = z.shape
    shifted = z[None] + h * torch.eye(nz, dtype=z.dtype)[:, None, :]  # (Nz, M, Nz)
    x = decoded(decoder, torch.cat([z[None], shifted]).reshape(-1, nz)).reshape(nz + 1, m, -1)
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


def best_candidate(decoder, candidates, step):
    """The shortest of named latent polylines under one measure:
    (name, points, length, {name: length})."""
    lengths = measure_many(decoder, [pts for _, pts in candidates], step)
    measured = [(float(length), name, pts) for length, (name, pts) in zip(lengths, candidates)]
    length, name, pts = min(measured, key=lambda c: c[0])
    return name, pts, length, {key: value for value, key, _ in measured}
