"""Recorded robot data: the Laikago quadruped's walking motion from pybullet_data.

`laikago/data1.txt` holds 2,498 frames; columns are frame, time and 12 joint
angles (radians). It ships with the installed pybullet package.
"""
import os

import numpy as np

from latent_geodesics.errors import DataError

JOINT_NAMES = ["%s_%s" % (leg, j) for leg in ("FR", "FL", "RR", "RL")
               for j in ("hip", "upper", "lower")]


def laikago_path():
    try:
        import pybullet_data
    except ImportError:
        raise DataError("pybullet is not installed: it ships the laikago recording") from None
    return os.path.join(pybullet_data.getDataPath(), "laikago", "data1.txt")


def laikago_dataset():
    """(2498, 12) joint angles and their names."""
    path = laikago_path()
    if not os.path.isfile(path):
        raise DataError("%s is missing from the installed pybullet_data" % path)
    with open(path) as f:
        comma = "," in f.readline()
    table = np.loadtxt(path, delimiter=",") if comma else np.loadtxt(path)
    return table[:, 2:14].astype(np.float64), list(JOINT_NAMES)
