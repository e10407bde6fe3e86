"""Two recorded arcs of one planar motion with a gap between them that no
demonstration covers: the smallest data set with a known data gap, for checking
that active learning asks for demonstrations there."""
import numpy as np

JOINT_NAMES = ["joint_1", "joint_2", "joint_3"]
GAP = 0.35    # |joint_1| below this is never recorded
SPAN = 1.2    # |joint_1| up to this is


def arc_pose(t):
    """The motion's configuration at phase t (its first joint): (..., 3)."""
    t = np.asarray(t, dtype=np.float64)
    return np.stack([t, 0.8 * np.sin(2 * t), 0.5 * np.cos(3 * t)], -1)


def two_arcs(n=1200, gap=GAP, seed=0):
    """(n, 3) poses, half on each arc, with 1 cm recording noise."""
    rng = np.random.default_rng(seed)
    t = np.r_[rng.uniform(-SPAN, -gap, n // 2), rng.uniform(gap, SPAN, n - n // 2)]
    return arc_pose(t + rng.normal(0, 0.01, n)) + rng.normal(0, 0.01, (n, 3))
