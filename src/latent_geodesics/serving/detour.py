"""A way around an object: where neither the demonstrations (the graph) nor the metric's
relaxation off them keep clear, the decoded motion is bent in joint space (and where no
bend clears it, serving/roadmap.py searches a roadmap around the blocked stretch).

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
FIT_STEP = EXTRA      # m any body point may move between the rows the fit measures
ITERATIONS, RATE = 400, 0.02
PATIENCE = 60         # iterations without the worst shortfall shrinking by 1 %: give up
SIZE_PENALTY = 1e-3   # per rad^2 of the offset's weights: small bends first
REFITS = 3            # times the fit may take in rows the whole motion's check found near


def basis(s, count=BASIS, degree=3):
    """(T, count) clamped cubic B-spline basis on [0, 1] without the first and last
    functions, so every offset built from it is zero at both ends."""
    knots = np.r_[[0.0] * degree, np.linspace(0.0, 1.0, count), [1.0] * degree]
    design = BSpline.design_matrix(np.clip(s, 0.0, 1.0), knots, degree).toarray()
    return design[:, 1:-1]


def fit_rows(body, positions, step=FIT_STEP):
    """Indices of the rows the fit measures: both ends and a row wherever any body point
    may have moved `step` since the last one. A smooth offset moves neighbouring rows
    alike, so these stand for the rest (EXTRA covers half a step); the whole motion is
    checked before a bend is returned."""
    travelled = np.r_[0.0, np.cumsum(body.motion_bound(np.diff(positions, axis=0)))]
    marks = np.arange(0.0, travelled[-1], step)
    rows = np.searchsorted(travelled, marks, side="right") - 1
    return np.unique(np.r_[rows, len(positions) - 1])


def bend(checker, positions, margin, resolution=0.005):
    """positions (T, J) bent so the whole motion, the stretches between rows included,
    keeps margin from every object (the fit aims for margin + EXTRA), or None when the
    fit on the rows that stand for the motion cannot make it (the caller then tries a
    roadmap, and bend_every_row last)."""
    positions = np.asarray(positions, dtype=float)
    s = arc_fraction(positions)
    design = basis(s)
    weights = torch.zeros(design.shape[1], positions.shape[1], dtype=checker.body.dtype,
                          requires_grad=True)
    rows = fit_rows(checker.body, positions)
    for _ in range(REFITS + 1):
        # each fitted row stands for len(positions) / len(rows) of the motion's rows
        weight = len(positions) / len(rows)
        if not fit(checker, positions[rows], design[rows], s[rows], margin, weights, weight):
            break
        bent = positions + design @ weights.detach().double().cpu().numpy()
        near = checker.violations(bent, margin, resolution)
        if not near.any():
            return bent
        near_rows = np.flatnonzero(near)
        rows = np.union1d(rows, np.r_[near_rows, near_rows + 1])
    return None


def bend_every_row(checker, positions, margin):
    """The slow way, where the fit on fewer rows got stuck: every row measured, from no
    offset (the gradient steps then take another course), or None. The caller checks
    the stretches between rows (the timed motion's check)."""
    positions = np.asarray(positions, dtype=float)
    s = arc_fraction(positions)
    design = basis(s)
    weights = torch.zeros(design.shape[1], positions.shape[1], dtype=checker.body.dtype,
                          requires_grad=True)
    if not fit(checker, positions, design, s, margin, weights):
        return None
    return positions + design @ weights.detach().double().cpu().numpy()


def fit(checker, positions, design, s, margin, weights, weight=1.0):
    """Gradient steps on weights (in place) until every row of positions + design @
    weights keeps its aim; False when stuck or out of iterations. weight: how many
    rows of the motion each row stands for (the shortfall's weight against the size
    penalty is then that of the whole motion)."""
    q = torch.as_tensor(positions, dtype=weights.dtype)
    design = torch.as_tensor(design, dtype=weights.dtype)
    optimiser = torch.optim.Adam([weights], lr=RATE)
    # The ends cannot move: near them the aim falls to the margin (which an end keeps).
    target = margin + EXTRA * torch.as_tensor(np.minimum(1.0, 8 * np.minimum(s, 1 - s)),
                                              dtype=q.dtype)
    best, since_best = np.inf, 0
    for _ in range(ITERATIONS):
        clearance = checker.clearance_tensor(q + design @ weights).amin(dim=(1, 2))
        short = torch.relu(target - clearance)
        if not bool((short > 0).any()):
            return True
        worst = float(short.detach().max())
        best, since_best = (worst, 0) if worst < 0.99 * best else (best, since_best + 1)
        if since_best > PATIENCE:   # stuck against the object: no bend of this kind clears it
            return False
        loss = weight * (short ** 2).sum() / EXTRA ** 2 + SIZE_PENALTY * (weights ** 2).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return False
