"""How far a joint-space motion strays from the demonstrations.

Two measures, both in radians of joint space:
- `largest_deviation(motion, reference)`: the largest distance of the motion's
  points from a reference motion (the demonstrated one between the same poses);
  what "follows the demonstrations" means when the truth is known (bench, tests);
- `RecordedData`: the distance of a motion's points to the nearest recorded
  configuration, also in units of the data's typical spacing; what the server
  reports for every geodesic (no truth needed), beside the same for the joint
  straight line.
"""
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

REFERENCE_STEP = 0.005   # rad: a reference polyline is densified to this before lookup
SPACING_SAMPLE = 2000    # poses whose nearest-neighbour distance sets the typical spacing


def densify(points, step=REFERENCE_STEP):
    """A joint-space polyline with points at most `step` apart (ends kept)."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) < 2:
        return points
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    pieces = np.maximum(1, np.ceil(seg / step)).astype(int)
    parts = [a + np.linspace(0, 1, n, endpoint=False)[:, None] * (b - a)
             for a, b, n in zip(points[:-1], points[1:], pieces)]
    return np.vstack(parts + [points[-1:]])


def largest_deviation(motion, reference):
    """max over the motion's points of the distance to the reference polyline (rad)."""
    return float(cKDTree(densify(reference)).query(np.asarray(motion, np.float64))[0].max())


def chord(q_start, q_goal, step=REFERENCE_STEP):
    """The joint-space straight line between two configurations, densely."""
    return densify(np.stack([q_start, q_goal]), step)


@dataclass
class Distance:
    largest: float          # rad
    mean: float             # rad
    largest_spacings: float  # in units of the data's typical spacing
    mean_spacings: float
    where: float            # fraction of the motion (0..1) at the largest distance


class RecordedData:
    """The recorded configurations, for "how far is this motion from the data"."""

    def __init__(self, configurations):
        self.configurations = np.asarray(configurations, dtype=np.float64)
        self.tree = cKDTree(self.configurations)
        n = len(self.configurations)
        sample = self.configurations[::max(1, n // SPACING_SAMPLE)]
        nearest = self.tree.query(sample, min(2, n))[0]
        spacing = float(np.median(np.atleast_2d(nearest)[:, -1])) if n > 1 else 0.0
        self.spacing = spacing if spacing > 0 else 1.0

    def distance(self, motion) -> Distance:
        """Distances of a motion's points (M, Nx) to the nearest recorded configuration."""
        d = self.tree.query(np.asarray(motion, dtype=np.float64))[0]
        worst = int(np.argmax(d))
        return Distance(float(d[worst]), float(d.mean()), float(d[worst] / self.spacing),
                        float(d.mean() / self.spacing), worst / max(1, len(d) - 1))
