"""Refining a geodesic: the fast polyline relaxation and the paper's NN curves.

"polyline" (the default refinement): the initial path (a graph geodesic) is
resampled to a few dozen knots and its discrete energy is minimised with
Levenberg-Marquardt, ends fixed; tens of milliseconds.

Neural-network geodesics (Chen et al., AISTATS 2018):

The curve is gamma(t) = (1 - t) z0 + t z1 + t (1 - t) g_w(t): the endpoints
hold by construction. The small network g_w starts at zero (the straight line)
or is first fitted to an initial curve (a graph geodesic: fewer steps, better
minima). The curve energy is minimised (its minimisers are constant-speed
geodesics), in one of two modes:
- "jacobian": Riemannian velocity ||J(gamma) gamma'|| by Jacobian-vector
  products (second derivatives of the decoder in the gradient), as in the paper;
- "finite-difference": the discretised energy, first derivatives only.
"""
import time

import numpy as np
import torch
from torch import nn
from torch.func import jvp

from latent_geodesics.errors import ConfigError
from latent_geodesics.geometry.curves import (
    Geodesic,
    PathStats,
    best_candidate,
    check_point,
    relax,
    to_numpy,
)
from latent_geodesics.geometry.metric import (
    FUNC_TRANSFORMS,
    Decoder,
    LatentMetric,
    Points,
    interpolate,
)

NN_MODES = ("finite-difference", "jacobian")
MODES = ("polyline",) + NN_MODES
MEASURE_PIECES = 256   # without a graph, measure at 1/256 of the start-goal distance


class CurveNet(nn.Module):
    """gamma(t) = (1 - t) z0 + t z1 + t (1 - t) g(t); g starts at zero."""

    def __init__(self, z0, z1, hidden=32, generator=None):
        super().__init__()
        self.register_buffer("z0", z0)
        self.register_buffer("z1", z1)
        self.g = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden),
                               nn.Tanh(), nn.Linear(hidden, z0.shape[0]))
        for layer in (self.g[0], self.g[2]):   # seeded without touching the global RNG
            bound = 1.0 / layer.in_features ** 0.5
            for p in (layer.weight, layer.bias):
                nn.init.uniform_(p, -bound, bound, generator=generator)
        nn.init.zeros_(self.g[-1].weight)
        nn.init.zeros_(self.g[-1].bias)

    def line(self, t):
        return self.z0 + t[:, None] * (self.z1 - self.z0)

    def forward(self, t):
        return self.line(t) + (t * (1 - t))[:, None] * self.g(t[:, None])

    def with_velocity(self, t):
        """(gamma(t), gamma'(t)), the network's derivative by a forward-mode JVP."""
        g, dg = jvp(lambda u: self.g(u[:, None]), (t,), (torch.ones_like(t),))
        w = t * (1 - t)
        return (self.line(t) + w[:, None] * g,
                (self.z1 - self.z0) + (1 - 2 * t)[:, None] * g + w[:, None] * dg)

    def fit(self, knots, steps=300, n=65, lr=3e-2):
        """Start from a given polyline (e.g. a graph geodesic): least squares in latent space.

        A smooth network fitted to the polyline converges far faster than one
        that has to cancel the polyline's kinks during the length optimisation.
        """
        seg = (knots[1:] - knots[:-1]).norm(dim=-1)
        s = torch.cat([seg.new_zeros(1), seg.cumsum(0)])
        t = torch.linspace(0, 1, n, dtype=knots.dtype, device=knots.device)
        target = interpolate(s / s[-1].clamp_min(1e-12), knots, t)
        scale = float(seg.sum()) ** 2 + 1e-12
        opt = torch.optim.Adam(self.g.parameters(), lr=lr)
        for _ in range(steps):
            loss = ((self(t) - target) ** 2).sum(-1).mean()
            if loss.item() < 1e-5 * scale:
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def initial_points(z_start, z_goal, init):
    """An initial curve (Geodesic or (m, Nz) points) as float64, ends set exactly."""
    points = to_numpy(init.points if isinstance(init, Geodesic) else init).copy()
    z_start = to_numpy(z_start)
    if points.ndim != 2 or points.shape[1] != z_start.size or len(points) < 2:
        raise ConfigError("init must be an (m >= 2, Nz) curve, got shape %s" % (points.shape,))
    points[0], points[-1] = z_start, to_numpy(z_goal)
    return points


def init_knots(z0, z1, init):
    return torch.as_tensor(initial_points(z0, z1, init), dtype=z0.dtype, device=z0.device)


def constant_speed(metric, curve, n_out, n_dense=512):
    """Points of the curve at equal decoded arc length (Riemannian constant speed)."""
    with torch.no_grad():
        t = torch.linspace(0, 1, n_dense, dtype=curve.z0.dtype, device=curve.z0.device)
        z = curve(t)
        arc = metric.arc_lengths(z).to(z.dtype)
        if arc[-1] <= 0:
            return z[torch.linspace(0, n_dense - 1, n_out).long()]
        targets = torch.linspace(0, 1, n_out, dtype=z.dtype, device=z.device)
        return interpolate(arc / arc[-1], z, targets)


def default_step(z_start, z_goal):
    """A measuring resolution when no graph gives one."""
    return max(float(np.linalg.norm(to_numpy(z_goal) - to_numpy(z_start))) / MEASURE_PIECES,
               1e-9)


def _endpoints(metric, z_start, z_goal):
    dim = to_numpy(z_start).size
    z0 = metric.points(check_point(z_start, dim, "start"))
    z1 = metric.points(check_point(z_goal, dim, "goal"))
    if z0.dtype not in (torch.float32, torch.float64):
        z0, z1 = z0.float(), z1.float()
    return z0, z1


def _never_longer(metric, path, candidates, step):
    """path, or the shortest candidate if one measures shorter (same measure)."""
    name, points, length, lengths = best_candidate(
        metric, [(path.method, path.points)] + candidates, step)
    path.points, path.length = to_numpy(points), length
    path.stats.candidate = name
    path.stats.straight_length = lengths.get("straight", float("nan"))
    return path


def polyline_geodesic(decoder, z_start, z_goal, init=None, step=None, knots=16,
                      max_iterations=25, tol=1e-4, callback=None, should_stop=None):
    """Relax a path's discrete energy (Levenberg-Marquardt, ends fixed): the fast refinement.

    init: None (straight line), a Geodesic or an (m, Nz) curve. step: the latent
    resolution of the energy and of the final measure (a graph's `step`).
    Never longer than its initial curve or the straight line (same measure).
    16 knots and a relative tolerance of 1e-4: on the curved skills under the
    data-aware metric as close to the demonstrations as 32 knots and 1e-5 (0.064 rad)
    in half the time (75 against 150 ms).
    callback(iteration, length) gets sqrt(energy), an upper bound of the length.
    """
    if int(max_iterations) < 1:
        raise ConfigError("max_iterations must be >= 1")
    t0 = time.perf_counter()
    metric = LatentMetric.of(decoder)
    z0, z1 = _endpoints(metric, z_start, z_goal)
    zs, zg = to_numpy(z0), to_numpy(z1)
    step = step or default_step(zs, zg)
    straight = np.stack([zs, zg])
    start = straight if init is None else initial_points(zs, zg, init)
    if np.array_equal(zs, zg):
        return Geodesic(straight, 0.0, "polyline", PathStats())
    report = None if callback is None else (lambda i, e: callback(i, float(np.sqrt(e))))
    points, iterations = relax(metric, start, step, knots=knots, iterations=int(max_iterations),
                               tol=tol, should_stop=should_stop, callback=report)
    cancelled = bool(should_stop is not None and should_stop())
    path = Geodesic(points, 0.0, "polyline" if init is None else "graph+polyline",
                    PathStats(iterations=iterations, cancelled=cancelled))
    path = _never_longer(metric, path, [("initial", start), ("straight", straight)], step)
    path.stats.time = time.perf_counter() - t0
    return path


def _energy_of(mode, metric, n_points, z0):
    """energy(curve) -> (energy to minimise, its curve's length) for an NN mode:
    finite differences of the decoded curve, or the decoder's Jacobian-vector
    product along the curve's velocity (jvp, no Jacobian formed)."""
    t_nodes = torch.linspace(0, 1, n_points + 1, dtype=z0.dtype, device=z0.device)
    t_mid = (t_nodes[1:] + t_nodes[:-1]) / 2

    def finite_difference(curve):
        return metric.energy_and_length(curve(t_nodes))

    def jacobian(curve):
        with FUNC_TRANSFORMS:
            z, dz = curve.with_velocity(t_mid)
            _, velocity = jvp(metric.embedding, (z,), (dz,))
        speed2 = (velocity ** 2).sum(-1)
        return speed2.mean(), speed2.detach().sqrt().mean()
    return finite_difference if mode == "finite-difference" else jacobian


def _train(curve, energy_of, max_iterations, lr, tol, patience, callback, should_stop):
    """Adam on the curve's energy; the shortest curve seen is loaded at the end.
    Returns (length history, iterations, cancelled)."""
    opt = torch.optim.Adam(curve.parameters(), lr=lr)
    history, best_len, best_state = [], float("inf"), None
    cancelled, iteration = False, 0
    for iteration in range(1, max_iterations + 1):
        energy, length = energy_of(curve)
        opt.zero_grad(set_to_none=True)
        energy.backward()
        current = length.item()
        if current < best_len:
            best_len = current
            best_state = {k: v.detach().clone() for k, v in curve.state_dict().items()}
        opt.step()
        history.append(current)
        if callback is not None:
            callback(iteration, current)
        if should_stop is not None and should_stop():
            cancelled = True
            break
        if tol > 0 and len(history) > patience:   # tol <= 0: run the whole budget
            before = history[-patience - 1]
            if before - min(history[-patience:]) < tol * before:
                break
    curve.load_state_dict(best_state)
    return history, iteration, cancelled


def nn_geodesic(decoder: Decoder, z_start: Points, z_goal: Points, init=None,
                mode="finite-difference",
                max_iterations=500, n_train_points=64, lr=2e-2, tol=1e-4, patience=20,
                hidden=32, n_out=100, callback=None, should_stop=None, seed=0,
                step=None) -> Geodesic:
    """Optimise an NN curve between two latent points; returns a constant-speed Geodesic.

    init: None (straight line), a Geodesic or an (m, Nz) curve to start from.
    callback(iteration, length) is called every iteration; should_stop() -> True
    cancels and returns the best curve so far (stats.cancelled = True). It stops
    early when the length improves by less than tol (relative) over `patience`
    iterations; tol <= 0 runs all max_iterations.
    The result is never longer than its initial curve or the straight line,
    all measured at latent resolution `step` (default: 1/256 of the distance).
    """
    if mode not in NN_MODES:
        raise ConfigError("mode must be one of %s, not %r" % (NN_MODES, mode))
    if int(max_iterations) < 1:
        raise ConfigError("max_iterations must be >= 1")
    t0 = time.perf_counter()
    metric = LatentMetric.of(decoder)
    z0, z1 = _endpoints(metric, z_start, z_goal)
    # A generator of its own: reseeding torch's global RNG would disturb other threads.
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):   # nn.Linear's own initialisation draws too
        curve = CurveNet(z0, z1, hidden, gen).to(device=z0.device, dtype=z0.dtype)
    knots = None if init is None else init_knots(z0, z1, init)
    if torch.equal(z0, z1):
        return Geodesic(torch.stack([z0, z1]).detach().cpu().double().numpy(), 0.0, "nn",
                        PathStats(time=time.perf_counter() - t0))
    if knots is not None and len(knots) > 2:
        curve.fit(knots)
    energy_of = _energy_of(mode, metric, n_train_points, z0)
    _, iteration, cancelled = _train(curve, energy_of, int(max_iterations), lr, tol,
                                           patience, callback, should_stop)
    points = constant_speed(metric, curve, n_out)
    zs, zg = to_numpy(z0), to_numpy(z1)
    path = Geodesic(points.detach().cpu().double().numpy(), 0.0,
                    "nn" if init is None else "graph+nn",
                    PathStats(iterations=iteration, cancelled=cancelled))
    candidates = [("straight", np.stack([zs, zg]))]
    if init is not None:   # in float64 as given: the float32 knots would measure differently
        candidates.append(("initial", initial_points(zs, zg, init)))
    path = _never_longer(metric, path, candidates, step or default_step(zs, zg))
    path.stats.time = time.perf_counter() - t0
    return path


def refined_geodesic(graph, z_start: Points, z_goal: Points, mode="polyline",
                     **kwargs) -> Geodesic:
    """Graph geodesic refined (polyline relaxation by default, or an NN curve)."""
    coarse = graph.shortest_path(z_start, z_goal)
    if coarse.length == 0.0:
        return coarse
    refine = polyline_geodesic if mode == "polyline" else nn_geodesic
    if mode != "polyline":
        kwargs["mode"] = mode
    fine = refine(graph.metric, z_start, z_goal, init=coarse, step=graph.step, **kwargs)
    fine.stats.nodes_expanded = coarse.stats.nodes_expanded
    fine.stats.bridges = coarse.stats.bridges
    return fine
