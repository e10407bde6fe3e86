"""The last way around an object: where neither the demonstrations (the graph) nor the
metric's relaxation off them keep clear, the decoded motion is bent in joint space.

The bend is a smooth offset added to the motion, as the model's residuals are carried
(trajectory.carry_residuals): zero at both ends, a cubic B-spline in the motion's arc
fraction, fitted by gradient steps on the body's clearance (differentiable through the
forward kinematics) against a small penalty on its size, so it leaves the learned
motion only as far and as long as the object demands. How far the result strays from
the demonstrations is what the response's data_distance reports, and
max_data_distance refuses; the timed motion is checked like any other.
"""
import numpy as np
import torch
from scipy.interpolate import BSpline

from latent_geodesics.serving.trajectory import arc_fraction

BASIS = 12            # B-spline pieces of the offset over the whole motion
EXTRA = 0.01          # m beyond the margin the bend aims for (the samples' slack)
ITERATIONS, RATE = 400, 0.02
PATIENCE = 60         # iterations without the worst shortfall shrinking by 1 %: give up
SIZE_PENALTY = 1e-3   # per rad^2 of the offset's weights: small bends first


def basis(s, count=BASIS, degree=3):
    """(T, count) clamped cubic B-spline basis on [0, 1] without the first and last
    functions, so every offset built from it is zero at both ends."""
    knots = np.r_[[0.0] * degree, np.linspace(0.0, 1.0, count), [1.0] * degree]
    design = BSpline.design_matrix(np.clip(s, 0.0, 1.0), knots, degree).toarray()
    return design[:, 1:-1]


def bend(checker, positions, margin):
    """positions (T, J) bent to keep margin + EXTRA from every object at its samples,
    or None when the fit cannot make it (the caller refuses the request)."""
    q = torch.as_tensor(positions, dtype=checker.body.dtype)
    s = arc_fraction(positions)
    design = torch.as_tensor(basis(s), dtype=q.dtype)
    weights = torch.zeros(design.shape[1], q.shape[1], dtype=q.dtype, requires_grad=True)
    optimiser = torch.optim.Adam([weights], lr=RATE)
    # The ends cannot move: near them the aim falls to the margin (which an end keeps).
    target = margin + EXTRA * torch.as_tensor(np.minimum(1.0, 8 * np.minimum(s, 1 - s)),
                                              dtype=q.dtype)
    best, since_best = np.inf, 0
    for _ in range(ITERATIONS):
        bent = q + design @ weights
        clearance = checker.clearance_tensor(bent).amin(dim=(1, 2))
        short = torch.relu(target - clearance)
        if not bool((short > 0).any()):
            return bent.detach().double().cpu().numpy()
        worst = float(short.detach().max())
        best, since_best = (worst, 0) if worst < 0.99 * best else (best, since_best + 1)
        if since_best > PATIENCE:   # stuck against the object: no bend of this kind clears it
            return None
        loss = (short ** 2).sum() / EXTRA ** 2 + SIZE_PENALTY * (weights ** 2).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return None
