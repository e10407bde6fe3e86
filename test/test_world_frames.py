"""FrameTree: the newest transform of each frame from its parent, chained through the
common ancestor, as tf2 answers a lookup at the newest time."""
import numpy as np
from scipy.spatial.transform import Rotation

from latent_geodesics.world.frames import FrameTree


def pose(xyz, rotvec=(0.0, 0.0, 0.0)):
    out = np.eye(4)
    out[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    out[:3, 3] = xyz
    return out


def test_a_lookup_chains_through_the_common_ancestor():
    """world -> base -> camera and world -> table: the table's pose in the camera
    frame is the product of the chain, whichever way it is walked."""
    base, camera, table = pose((1, 0, 0), (0, 0, 0.5)), pose((0, 0.2, 1), (0.3, 0, 0)), \
        pose((2, 1, 0), (0, 0, -1.0))
    tree = FrameTree()
    tree.set("world", "base", base)
    tree.set("/base", "camera", camera)   # a leading slash is tf2's same frame
    tree.set("world", "table", table)
    expected = np.linalg.inv(base @ camera) @ table
    assert np.allclose(tree.lookup("camera", "table"), expected)
    assert np.allclose(tree.lookup("table", "camera"), np.linalg.inv(expected))
    assert np.allclose(tree.lookup("base", "camera"), camera)
    assert np.allclose(tree.lookup("camera", "camera"), np.eye(4))


def test_the_newest_transform_wins_and_unjoined_frames_have_no_answer():
    tree = FrameTree()
    tree.set("base", "camera", pose((1, 0, 0)))
    tree.set("base", "camera", pose((0, 2, 0)))
    assert np.allclose(tree.lookup("base", "camera")[:3, 3], (0, 2, 0))
    tree.set("odom", "wheel", pose((0, 0, 1)))
    assert tree.lookup("base", "wheel") is None
    assert tree.lookup("base", "nowhere") is None
    tree.set("camera", "base", pose((1, 1, 1)))   # a loop: no chain goes round it
    assert tree.lookup("odom", "camera") is None
