"""Riemannian geometry of a decoder's latent space (pullback of the Euclidean metric).

A decoder is any callable mapping a float tensor (B, Nz) to (B, Nx): an
nn.Module or a plain function. Points may be tensors or numpy arrays.

LatentMetric is the one measure of the package (stochman's EmbeddedManifold in
spirit): it holds the embedding whose Euclidean geometry is pulled back (the
decoder mean, or the data-aware [mean, variance] embedding) and owns every length
and energy of latent curves: single curves, batches, ragged runs, straight
segments and subdivided polylines. Graph edges, shortcuts, candidates, served
paths, refinements and ~geodesic_lengths all measure through it, so they agree;
a new metric term is a change to the embedding this object holds, nowhere else.

    curve_length(decoder, curve)        sum_i ||f(c_{i+1}) - f(c_i)||
    curve_energy(decoder, curve)        (n - 1) sum_i ||f(c_{i+1}) - f(c_i)||^2
    metric_tensor(decoder, z)           G = J^T J, (B, Nz, Nz)
    magnification_factor(decoder, z)    sqrt(det G), through 1/2 logdet
"""
import itertools
import threading
from typing import Callable, Union

import numpy as np
import torch
from torch.func import jacfwd, jacrev, vmap

Decoder = Callable[[torch.Tensor], torch.Tensor]   # (B, Nz) -> (B, Nx)
Points = Union[torch.Tensor, np.ndarray]          # (B, Nz) or (n, Nz)

CHUNK = 4096  # latent points per Jacobian batch: bounds memory for big grids
# torch.func transforms (vmap, jacfwd, jvp) are not thread-safe: concurrent calls
# (a ROS node serves each request in its own thread) corrupt each other's results.
FUNC_TRANSFORMS = threading.Lock()


def decoder_device_dtype(decoder):
    """Where and in which precision the decoder computes (CPU float64 for functions)."""
    decoder = getattr(decoder, "__self__", decoder)  # a bound method of a module
    if isinstance(decoder, torch.nn.Module):
        for tensor in itertools.chain(decoder.parameters(), decoder.buffers()):
            return tensor.device, tensor.dtype
    return torch.device("cpu"), None


def as_points(points, decoder):
    """Tensor on the decoder's device; numpy/lists become the decoder's dtype."""
    device, dtype = decoder_device_dtype(decoder)
    if isinstance(points, torch.Tensor):
        return points.to(device=device, dtype=dtype or points.dtype)
    return torch.as_tensor(np.asarray(points, dtype=np.float64), device=device,
                           dtype=dtype or torch.float64)


def decode(decoder, z, batch_size=65536):
    """Decode (..., Nz) points in batches; keeps gradients."""
    flat = z.reshape(-1, z.shape[-1])
    out = [decoder(flat[i:i + batch_size]) for i in range(0, len(flat), batch_size)]
    out = torch.cat(out) if out else flat.new_zeros(0, 0)
    return out.reshape(*z.shape[:-1], out.shape[-1])


class AmbientEmbedding(torch.nn.Module):
    """embedding(z) with term(its first `columns`) appended: (B, D + T)."""

    def __init__(self, embedding, term, columns):
        super().__init__()
        self.base, self.term, self.columns = embedding, term, int(columns)

    def forward(self, z):
        x = self.base(z)
        h = self.term(x[..., :self.columns])
        return torch.cat([x, h.to(x.dtype)], dim=-1)


MAX_MEASURE_POINTS = 20000   # a polyline's measure is coarsened beyond this many points


class LatentMetric:
    """The decoded (embedded) length and energy of latent curves: one measure.

    embedding: callable (B, Nz) -> (B, D); the metric is G = J^T J of it. Lengths
    are sums of Euclidean steps between embedded points (forward passes only),
    accumulated in float64 whatever the embedding's precision.
    """

    def __init__(self, embedding: Decoder, batch_size: int = 65536):
        self.embedding = embedding
        self.batch_size = batch_size

    @classmethod
    def of(cls, decoder_or_metric):
        """A metric as is; a decoder wrapped (the Euclidean pullback through it)."""
        if isinstance(decoder_or_metric, LatentMetric):
            return decoder_or_metric
        return cls(decoder_or_metric)

    def with_ambient(self, term, columns):
        """This metric with an ambient term: the embedding gains the coordinates
        term(x[:, :columns]) of its first `columns` (the decoded joint positions), so
        a curve pays for every change of the term along it (G + J_h^T J_h). The
        robot's world enters here: a barrier that rises near obstacles makes paths
        toward them long; every length and energy below measures through it."""
        return LatentMetric(AmbientEmbedding(self.embedding, term, columns), self.batch_size)

    def points(self, z):
        """z as a tensor on the embedding's device, in its precision."""
        return as_points(z, self.embedding)

    def embed(self, z):
        """Embedded (decoded) points, batched; keeps gradients."""
        return decode(self.embedding, self.points(z), self.batch_size)

    # --- differentiable: single curves and batches of equal length -------------
    def curve_length(self, curve):
        """curve (n, Nz) -> scalar, (B, n, Nz) -> (B,)."""
        return self.displacements(curve).norm(dim=-1).sum(-1)

    def curve_energy(self, curve):
        """(n - 1) sum ||dx||^2; its minimisers are constant-speed geodesics."""
        return self.energy_and_length(curve)[0]

    def energy_and_length(self, curve):
        """(energy, length without gradient) from one embedding of the curve."""
        dx = self.displacements(curve)
        energy = dx.shape[-2] * (dx ** 2).sum(-1).sum(-1)
        return energy, dx.detach().norm(dim=-1).sum(-1)

    def displacements(self, curve):
        """The embedded steps f(c_{i+1}) - f(c_i): (..., n - 1, D)."""
        x = self.embed(curve)
        return x[..., 1:, :] - x[..., :-1, :]

    @torch.no_grad()
    def arc_lengths(self, curve):
        """Cumulative length along curve (n, Nz): (n,), starting at 0."""
        steps = self.displacements(curve).norm(dim=-1)
        return torch.cat([steps.new_zeros(1), steps.cumsum(0)])

    # --- measures (no gradients, float64 numpy) ---------------------------------
    @torch.no_grad()
    def ragged_lengths(self, points, sizes, embedded=None):
        """Lengths of consecutive runs of `sizes` points of `points` (M, Nz), all
        embedded at once (or given as `embedded`, (M, D)): (len(sizes),)."""
        x = self.embed(points) if embedded is None else embedded
        steps = (x[1:] - x[:-1]).norm(dim=-1).double().cpu().numpy()
        run = np.repeat(np.arange(len(sizes)), sizes)
        inside = run[1:] == run[:-1]     # a step that joins two runs is no step
        return np.bincount(run[1:][inside], steps[inside], minlength=len(sizes))

    def segment_lengths(self, za, zb, step, cap=64, xa=None, xb=None):
        """Lengths of straight segments za[i] -> zb[i] (E, Nz), each cut into
        ceil(latent length / step) equal pieces (1 to cap); xa, xb: the ends'
        embeddings where the caller has them (only interior points are embedded)."""
        za, zb = _numpy(za), _numpy(zb)
        if len(za) == 0:
            return np.zeros(0)
        pieces = segment_pieces(za, zb, step, cap)
        return self._segments(za, zb, pieces, xa, xb)

    @torch.no_grad()
    def _segments(self, za, zb, pieces, xa, xb):
        n = len(za)
        seg = np.repeat(np.arange(n), pieces - 1)   # interior points, segment by segment
        first = np.r_[0, np.cumsum(pieces - 1)[:-1]]
        t = (np.arange(len(seg)) - first[seg] + 1) / pieces[seg]
        xa = self.embed(za) if xa is None else xa
        xb = self.embed(zb) if xb is None else xb
        inner = self.embed(za[seg] + t[:, None] * (zb[seg] - za[seg])) if len(seg) \
            else xa[:0]
        # Rows of [xa; inner; xb] in run order: segment i's start, interior, end.
        size = pieces + 1
        run_start = np.r_[0, np.cumsum(size)[:-1]]
        rows = np.empty(size.sum(), dtype=np.int64)
        rows[run_start] = np.arange(n)
        rows[run_start + pieces] = n + len(seg) + np.arange(n)
        rows[run_start[seg] + 1 + np.arange(len(seg)) - first[seg]] = n + np.arange(len(seg))
        x = torch.cat([xa, inner, xb])[torch.as_tensor(rows, device=inner.device)]
        return self.ragged_lengths(None, pieces + 1, embedded=x)

    def polyline_lengths(self, polylines, step):
        """Lengths of latent polylines, every segment cut as segment_lengths cuts
        it (uncapped, but at most MAX_MEASURE_POINTS in all): one embedding."""
        dense = [subdivide(points, step)[0] for points in polylines]
        return self.ragged_lengths(np.vstack(dense), [len(d) for d in dense])

    def polyline_length(self, points, step):
        return float(self.polyline_lengths([points], step)[0])


def segment_pieces(za, zb, step, cap=None):
    """How many equal pieces each segment za -> zb is cut into at resolution step."""
    pieces = np.maximum(1, np.ceil(np.linalg.norm(zb - za, axis=-1) / step))
    return (pieces if cap is None else np.minimum(pieces, cap)).astype(int)


def subdivide(points, step, max_points=MAX_MEASURE_POINTS):
    """The polyline (m, Nz) with each segment cut into pieces no longer than step.

    Returns (dense points, index of each original point in them).
    """
    points = _numpy(points)
    return split(points, segment_pieces(points[:-1], points[1:], step), max_points)


def split(points, pieces, max_points=MAX_MEASURE_POINTS):
    """Cut segment i of a polyline into pieces[i] equal parts (at least one);
    the total is capped at max_points by coarsening evenly.

    Returns (dense points, index of each original point in them).
    """
    points = _numpy(points)
    pieces = np.maximum(1, np.asarray(pieces)).astype(int)
    if pieces.sum() + 1 > max_points:
        pieces = np.maximum(1, np.floor(pieces * (max_points - 1) / pieces.sum())).astype(int)
    knots = np.r_[0, np.cumsum(pieces)]
    seg_of = np.repeat(np.arange(len(pieces)), pieces)
    frac = (np.arange(knots[-1]) - knots[seg_of]) / pieces[seg_of]
    dense = points[seg_of] + frac[:, None] * (points[seg_of + 1] - points[seg_of])
    return np.vstack([dense, points[-1:]]), knots


def _numpy(points):
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    return np.asarray(points, dtype=np.float64)


def curve_length(decoder: Decoder, curve: Points) -> torch.Tensor:
    """Discretised Riemannian length: curve (n, Nz) -> scalar, (B, n, Nz) -> (B,)."""
    return LatentMetric.of(decoder).curve_length(curve)


def curve_energy(decoder, curve):
    """Discretised energy (n - 1) sum ||dx||^2; minimisers are constant-speed geodesics."""
    return LatentMetric.of(decoder).curve_energy(curve)


def jacobian(decoder, z):
    """Batched Jacobians J(z): (B, Nz) -> (B, Nx, Nz), chunked.

    torch.func vmap over jacfwd (cost ~ Nz) or jacrev (cost ~ Nx), whichever
    is cheaper; a decoder that vmap cannot trace falls back to autograd.
    """
    z = as_points(z, decoder)
    if len(z) == 0:
        raise ValueError("no latent points given")
    nx = decoder(z[:1]).shape[-1]
    single = lambda p: decoder(p[None])[0]  # noqa: E731
    jac = vmap(jacfwd(single) if z.shape[-1] <= nx else jacrev(single))
    # A decoder whose forward pass looks up numbers (e.g. nearest centres) says so:
    # under vmap it would take a slow exact path, under autograd its fast one.
    by_autograd = getattr(decoder, "jacobian_by_autograd", False)
    chunks = []
    for i in range(0, len(z), CHUNK):
        part = z[i:i + CHUNK]
        try:
            if by_autograd:
                raise NotImplementedError
            with FUNC_TRANSFORMS:
                chunks.append(jac(part))
        except Exception:  # not vmap-traceable (e.g. data-dependent control flow)
            summed = lambda p: decoder(p).sum(0)  # noqa: E731  rows are independent
            chunks.append(torch.autograd.functional.jacobian(
                summed, part, vectorize=True).permute(1, 0, 2))
    return torch.cat(chunks)


def metric_tensor(decoder: Decoder, z: Points) -> torch.Tensor:
    """G(z) = J(z)^T J(z): (B, Nz) -> (B, Nz, Nz)."""
    J = jacobian(decoder, z)
    return J.transpose(-1, -2) @ J


def log_magnification_factor(decoder, z):
    """1/2 logdet G(z) = sum_i log sigma_i(J): (B,), no under- or overflow."""
    sigma = torch.linalg.svdvals(jacobian(decoder, z))
    if sigma.shape[-1] < as_points(z, decoder).shape[-1]:
        return torch.full(sigma.shape[:1], -float("inf"), device=sigma.device)
    return torch.log(sigma).sum(-1)


def magnification_factor(decoder: Decoder, z: Points) -> torch.Tensor:
    """MF(z) = sqrt(det G(z)): (B, Nz) -> (B,)."""
    return log_magnification_factor(decoder, z).exp()


def interpolate(s, points, t):
    """Piecewise-linear interpolation of points at knots s (increasing) to values t."""
    idx = torch.searchsorted(s, t.clamp(0, 1), right=True).clamp(1, len(s) - 1)
    s0, s1 = s[idx - 1], s[idx]
    w = ((t - s0) / (s1 - s0).clamp_min(1e-12))[:, None]
    return points[idx - 1] + w * (points[idx] - points[idx - 1])
