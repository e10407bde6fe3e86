"""The independent dense check (URDF geometry sampled as points, no sphere cover)
finds what lies between rows, and the sphere-cover check_path never calls clear a
motion it finds colliding."""
from pathlib import Path

import numpy as np
import torch

from latent_geodesics.world.body import RobotBody, build_chain
from latent_geodesics.world.collision import CollisionChecker
from latent_geodesics.world.scene import Scene, Shape, WorldObject
from latent_geodesics.world.urdf import parse_urdf
from latent_geodesics.world.verification import dense_collisions, joint_speeds, link_points

PANDA = (Path(__file__).resolve().parents[1] / "urdf" / "panda.urdf").read_text()
NAMES = ["panda_joint%d" % i for i in range(1, 8)]
FRAME = "panda_link0"
HOME = np.array([0.0, -0.3, 0.0, -2.0, 0.0, 1.8, 0.8])
FAST = {"spacing": 0.002, "point_spacing": 0.015}   # test speed; the bench uses 1 mm, 1 cm


def at(position):
    pose = np.eye(4)
    pose[:3, 3] = position
    return pose


def link7_point(q):
    """Where panda_link7's cylinder centre is at q (pytorch_kinematics directly)."""
    chain = build_chain(PANDA).to(dtype=torch.float64)
    pose = chain.forward_kinematics(torch.tensor(q)[None])["panda_link7"].get_matrix()[0]
    return (pose[:3, :3] @ torch.tensor([0, 0, 0.05], dtype=torch.float64)
            + pose[:3, 3]).numpy()


def test_the_dense_check_finds_an_object_between_two_free_rows():
    start, goal = HOME.copy(), HOME.copy()
    start[0], goal[0] = -0.6, 0.6
    scene = Scene(FRAME).add(WorldObject("ball", at(link7_point((start + goal) / 2)),
                                         (Shape.sphere(0.02),)))
    rows = np.stack([start, goal])
    ends = [dense_collisions(PANDA, NAMES, scene, row[None], **FAST) for row in rows]
    assert not any(end.collides for end in ends) and min(e.clearance for e in ends) > 0.1
    found = dense_collisions(PANDA, NAMES, scene, rows, **FAST)
    assert found.collides and found.clearance < -0.01   # points 1.5 cm apart: near its centre
    assert (found.index, found.link, found.object) == (0, "panda_link7", "ball")
    assert 0.35 < found.fraction < 0.65 and found.samples > 500


def test_check_path_never_calls_clear_what_the_dense_check_finds_colliding():
    rng = np.random.default_rng(7)
    body = RobotBody.from_urdf(PANDA, NAMES)
    seen = {"both clear": 0, "both collide": 0, "spheres only": 0}
    for trial in range(8):
        rows = HOME + np.cumsum(rng.normal(scale=0.1, size=(3, 7)), axis=0)
        anchor = link7_point(rows[1] + (rows[2] - rows[1]) * rng.random())
        scene = Scene(FRAME).add(WorldObject(
            "thing", at(anchor + rng.normal(scale=0.06, size=3)),
            (Shape.box(rng.uniform(0.02, 0.12, 3)),)))
        dense = dense_collisions(PANDA, NAMES, scene, rows, **FAST)
        contact = CollisionChecker(body, scene).check_path(rows)
        if contact is None:
            assert not dense.collides and dense.clearance >= 0, trial
            seen["both clear"] += 1
        elif dense.collides:
            assert contact.clearance < 0
            seen["both collide"] += 1
        else:
            seen["spheres only"] += 1   # the cover's bulge or a near miss: conservative
    assert seen["both clear"] >= 1 and seen["both collide"] >= 1, seen


def test_the_dense_checks_own_speed_bound_holds():
    robot = parse_urdf(PANDA)
    chain = build_chain(PANDA).to(dtype=torch.float64)
    points = link_points(robot, 0.03)
    speeds = joint_speeds(chain, points, NAMES, robot)
    rng = np.random.default_rng(3)
    ratios = []
    for trial in range(9):
        q0, dq = HOME + rng.normal(size=7), rng.normal(scale=0.3, size=7)
        if trial < 3:   # one joint alone: the bound itself
            dq = np.eye(7)[trial] * 0.5
        q = torch.tensor(q0 + np.linspace(0, 1, 300)[:, None] * dq)
        poses = chain.forward_kinematics(q)
        moved = 0.0
        for link, local in points.items():
            m = poses[link].get_matrix().numpy()
            world = np.einsum("tij,pj->tpi", m[:, :3, :3], local) + m[:, None, :3, 3]
            moved = max(moved, np.linalg.norm(np.diff(world, axis=0), axis=2).sum(0).max())
        assert moved <= np.abs(dq) @ speeds + 1e-9
        ratios.append(moved / (np.abs(dq) @ speeds))
    assert max(ratios) > 0.6   # and not vacuous


def test_points_lie_on_and_in_the_urdf_geometry():
    points = link_points(parse_urdf(PANDA), 0.01)["panda_link4"]   # cylinder r .055 h .38
    # in panda_link4's frame the cylinder lies along y, centred at (-0.04, 0.19, 0)
    radial = np.hypot(points[:, 0] + 0.04, points[:, 2])
    assert radial.max() <= 0.055 + 1e-5 and radial.max() > 0.0549   # rpy 1.5708, not pi/2
    assert np.abs(points[:, 1] - 0.19).max() <= 0.19 + 1e-5
    assert (radial < 0.03).sum() > 50   # the interior grid
