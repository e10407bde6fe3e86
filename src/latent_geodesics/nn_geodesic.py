"""Neural-network geodesics (Chen et al., AISTATS 2018).

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

import torch
from torch import nn
from torch.func import jvp

from .geometry import FUNC_TRANSFORMS, as_points, curve_length, decode, interpolate
from .graph import Geodesic, check_point, to_numpy

MODES = ("finite-difference", "jacobian")


class CurveNet(nn.Module):
    """gamma(t) = (1 - t) z0 + t z1 + t (1 - t) g(t); g starts at zero."""

    def __init__(self, z0, z1, hidden=32):
        super().__init__()
        self.register_buffer("z0", z0)
        self.register_buffer("z1", z1)
        self.g = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden),
                               nn.Tanh(), nn.Linear(hidden, z0.shape[0]))
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


def init_knots(z0, z1, init):
    points = init.points if isinstance(init, Geodesic) else init
    knots = torch.as_tensor(to_numpy(points), dtype=z0.dtype, device=z0.device)
    if knots.ndim != 2 or knots.shape[1] != z0.shape[0] or len(knots) < 2:
        raise ValueError("init must be an (m >= 2, Nz) curve, got shape %s" % (tuple(knots.shape),))
    knots = knots.clone()
    knots[0], knots[-1] = z0, z1
    return knots


def polyline_length(decoder, points, per_segment=4):
    """Decoded length of a polyline, each segment subdivided (a dense re-measure)."""
    points = torch.as_tensor(points)
    t = torch.linspace(0, 1, per_segment + 1, dtype=points.dtype, device=points.device)[:-1]
    dense = (points[:-1, None] + t[None, :, None] * (points[1:] - points[:-1])[:, None])
    dense = torch.cat([dense.reshape(-1, points.shape[1]), points[-1:]])
    with torch.no_grad():
        return float(curve_length(decoder, dense))


def constant_speed(decoder, curve, n_out, n_dense=512):
    """Points of the curve at equal decoded arc length (Riemannian constant speed)."""
    with torch.no_grad():
        t = torch.linspace(0, 1, n_dense, dtype=curve.z0.dtype, device=curve.z0.device)
        z = curve(t)
        x = decode(decoder, z)
        seg = (x[1:] - x[:-1]).norm(dim=-1).to(z.dtype)
        arc = torch.cat([seg.new_zeros(1), seg.cumsum(0)])
        if arc[-1] <= 0:
            return z[torch.linspace(0, n_dense - 1, n_out).long()]
        targets = torch.linspace(0, 1, n_out, dtype=z.dtype, device=z.device)
        return interpolate(arc / arc[-1], z, targets)


def nn_geodesic(decoder, z_start, z_goal, init=None, mode="finite-difference",
                max_iterations=500, n_train_points=64, lr=2e-2, tol=1e-4, patience=20,
                hidden=32, n_out=100, callback=None, should_stop=None, seed=0):
    """Optimise a curve between two latent points; returns a constant-speed Geodesic.

    init: None (straight line), a Geodesic or an (m, Nz) curve to start from.
    callback(iteration, length) is called every iteration; should_stop() -> True
    cancels and returns the best curve so far (stats["cancelled"] = True).
    The result is never longer than its initial curve (both re-measured densely).
    """
    if mode not in MODES:
        raise ValueError("mode must be one of %s, not %r" % (MODES, mode))
    if int(max_iterations) < 1:
        raise ValueError("max_iterations must be >= 1")
    t0 = time.perf_counter()
    dim = to_numpy(z_start).size
    z0 = as_points(check_point(z_start, dim, "start"), decoder)
    z1 = as_points(check_point(z_goal, dim, "goal"), decoder)
    if z0.dtype not in (torch.float32, torch.float64):
        z0, z1 = z0.float(), z1.float()
    torch.manual_seed(seed)
    curve = CurveNet(z0, z1, hidden).to(device=z0.device, dtype=z0.dtype)
    knots = None if init is None else init_knots(z0, z1, init)
    if torch.equal(z0, z1):
        return Geodesic(torch.stack([z0, z1]).detach().cpu().double().numpy(), 0.0, "nn",
                        {"time": time.perf_counter() - t0, "iterations": 0, "mode": mode})
    if knots is not None and len(knots) > 2:
        curve.fit(knots)
    opt = torch.optim.Adam(curve.parameters(), lr=lr)
    t_nodes = torch.linspace(0, 1, n_train_points + 1, dtype=z0.dtype, device=z0.device)
    t_mid = (t_nodes[1:] + t_nodes[:-1]) / 2
    history, best_len, best_state = [], float("inf"), None
    cancelled, iteration = False, 0
    for iteration in range(1, int(max_iterations) + 1):
        if mode == "finite-difference":
            x = decoder(curve(t_nodes))
            steps = (x[1:] - x[:-1])
            energy = n_train_points * (steps ** 2).sum()
            length = steps.detach().norm(dim=-1).sum()
        else:
            with FUNC_TRANSFORMS:
                z, dz = curve.with_velocity(t_mid)
                _, velocity = jvp(decoder, (z,), (dz,))
            speed2 = (velocity ** 2).sum(-1)
            energy = speed2.mean()
            length = speed2.detach().sqrt().mean()
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
        if len(history) > patience:
            before = history[-patience - 1]
            if before - min(history[-patience:]) < tol * before:
                break
    curve.load_state_dict(best_state)
    points = constant_speed(decoder, curve, n_out)
    length = polyline_length(decoder, points)
    method = "nn" if init is None else "graph+nn"
    if knots is not None:  # never hand back something longer than the start
        init_length = polyline_length(decoder, knots, per_segment=max(4, n_out // len(knots)))
        if init_length < length:
            points, length = knots, init_length
    return Geodesic(points.detach().cpu().double().numpy(), float(length), method,
                    {"time": time.perf_counter() - t0, "iterations": iteration, "mode": mode,
                     "cancelled": cancelled, "history": history})


def refined_geodesic(graph, z_start, z_goal, **kwargs):
    """Graph geodesic refined by nn_geodesic: the recommended default for quality."""
    coarse = graph.shortest_path(z_start, z_goal)
    if coarse.length == 0.0:
        return coarse
    fine = nn_geodesic(graph.decoder, z_start, z_goal, init=coarse, **kwargs)
    fine.stats["graph_length"] = coarse.length
    fine.stats["graph_time"] = coarse.stats["time"]
    fine.stats["nodes_expanded"] = coarse.stats["nodes_expanded"]
    return fine
