"""Timing decoded joint paths so that a controller can follow them."""
import numpy as np


def time_parametrize(positions, max_velocity, max_acceleration=None, iterations=200):
    """Times (m,) from 0 for positions (m, D): no joint faster than max_velocity.

    Each segment takes the time its largest joint step needs at max_velocity.
    With max_acceleration, segments around a point whose finite-difference
    acceleration is too high are slowed down (time scaled by the square root
    of the excess, which fixes a single violation) until none remains; the
    trajectory starts and ends at rest.
    """
    q = np.asarray(positions, dtype=np.float64)
    if q.ndim != 2 or len(q) < 2:
        raise ValueError("need at least two positions (m, D)")
    if not max_velocity > 0:
        raise ValueError("max_velocity must be positive")
    steps = np.abs(np.diff(q, axis=0))
    dt = np.maximum(steps.max(axis=1) / max_velocity, 1e-3)
    if max_acceleration:
        delta = np.diff(q, axis=0)
        for _ in range(iterations):
            v = np.vstack([np.zeros(q.shape[1]), delta / dt[:, None], np.zeros(q.shape[1])])
            span = np.r_[dt[0], (dt[:-1] + dt[1:]) / 2, dt[-1]]
            acc = np.abs(np.diff(v, axis=0)).max(axis=1) / span      # at each point
            excess = acc / max_acceleration
            if excess.max() <= 1 + 1e-9:
                break
            scale = np.sqrt(np.maximum(excess, 1.0)) * (1 + 1e-6)
            # slow both segments adjacent to each offending point
            dt = dt * np.maximum(scale[:-1], scale[1:])
    return np.r_[0.0, np.cumsum(dt)]
