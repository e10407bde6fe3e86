"""The robot's body: a conservative sphere cover of every link, posed as
pytorch_kinematics poses the links, and lever arms that bound how far it moves."""
from pathlib import Path

import numpy as np
import pytest
import torch

from latent_geodesics.world.body import RobotBody
from latent_geodesics.world.cover import box_cover, cylinder_cover, mesh_cover
from latent_geodesics.world.urdf import URDFError

PANDA = (Path(__file__).resolve().parents[1] / "urdf" / "panda.urdf").read_text()
NAMES = ["panda_joint%d" % i for i in range(1, 8)]
LOW = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
HIGH = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])


def panda_body(**kwargs):
    return RobotBody.from_urdf(PANDA, NAMES, **kwargs)


def random_q(rng, n):
    return LOW + (HIGH - LOW) * rng.random((n, 7))


def pk_link_poses(q):
    """Each link's pose (name -> (B, 4, 4)) from pytorch_kinematics directly."""
    import pytorch_kinematics as pk
    chain = pk.build_chain_from_urdf(PANDA).to(dtype=torch.float64)
    poses = chain.forward_kinematics(torch.as_tensor(q, dtype=torch.float64))
    return {name: t.get_matrix().numpy() for name, t in poses.items()}


def inside_cylinder(rng, radius, length, n):
    """n points uniformly inside a z-axis cylinder (its surface included)."""
    rho = radius * np.sqrt(rng.random(n))
    rho[: n // 4] = radius   # a quarter exactly on the mantle
    phi = rng.random(n) * 2 * np.pi
    z = (rng.random(n) - 0.5) * length
    z[n // 4: n // 2] = np.sign(z[n // 4: n // 2]) * length / 2   # on the flat ends
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), z], 1)


def covered(points, spheres, slack=1e-6):
    d = np.linalg.norm(points[:, None, :] - spheres[None, :, :3], axis=2) - spheres[None, :, 3]
    return d.min(axis=1) <= slack


def urdf_cylinders():
    """(link, origin 4x4, radius, length) of every visual cylinder in panda.urdf."""
    from latent_geodesics.world.body import origin_matrix
    from latent_geodesics.world.urdf import parse_urdf
    robot = parse_urdf(PANDA)
    return [(link.name, origin_matrix(v.origin), v.geometry.radius, v.geometry.length)
            for link in robot.links for v in link.visuals]


def test_every_point_of_every_panda_link_lies_inside_a_sphere_in_every_pose():
    rng = np.random.default_rng(0)
    body = panda_body()
    q = random_q(rng, 5)
    poses = pk_link_poses(q)
    centres = body.sphere_centres(q).double().numpy()
    radii = body.radii.double().numpy()
    for link, origin, radius, length in urdf_cylinders():
        local = inside_cylinder(rng, radius, length, 2000) @ origin[:3, :3].T + origin[:3, 3]
        mine = body.sphere_links == body.link_names.index(link)
        for b in range(len(q)):
            world = local @ poses[link][b, :3, :3].T + poses[link][b, :3, 3]
            spheres = np.hstack([centres[b, mine], radii[mine, None]])
            assert covered(world, spheres, slack=1e-5).all(), (link, b)


def test_sphere_centres_are_pytorch_kinematics_link_poses():
    rng = np.random.default_rng(1)
    body = panda_body(dtype=torch.float64)
    q = random_q(rng, 16)
    poses = pk_link_poses(q)
    centres = body.sphere_centres(q).numpy()
    local = body._centres.numpy()
    for s, link_index in enumerate(body.sphere_links):
        pose = poses[body.link_names[link_index]]
        expected = pose[:, :3, :3] @ local[s] + pose[:, :3, 3]
        np.testing.assert_allclose(centres[:, s], expected, atol=1e-9)


def test_sphere_centres_are_differentiable():
    body = panda_body(dtype=torch.float64)
    q = torch.tensor(random_q(np.random.default_rng(2), 3), requires_grad=True)
    body.sphere_centres(q)[:, :, 0].sum().backward()
    eps = 1e-6
    dq = torch.zeros_like(q)
    dq[:, 1] = eps
    with torch.no_grad():
        numeric = (body.sphere_centres(q + dq)[:, :, 0].sum(1)
                   - body.sphere_centres(q - dq)[:, :, 0].sum(1)) / (2 * eps)
    np.testing.assert_allclose(q.grad[:, 1].numpy(), numeric.numpy(), rtol=1e-5, atol=1e-7)


def surface_points_along(body, q0, dq, steps=400, per_sphere=6, seed=0):
    """Sphere-surface points (fixed in their link frames) along q0 → q0 + dq: their
    path lengths, measured by fine chords."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(len(body.radii), per_sphere, 3))
    u /= np.linalg.norm(u, axis=2, keepdims=True)
    local = body._centres.numpy()[:, None, :] + body.radii.numpy()[:, None, None] * u
    q = q0 + np.linspace(0, 1, steps + 1)[:, None] * dq
    poses = pk_link_poses(q)
    frames = np.stack([poses[body.link_names[i]] for i in body.sphere_links], 1)  # T,S,4,4
    world = np.einsum("tsij,skj->tski", frames[..., :3, :3], local) + frames[:, :, None, :3, 3]
    return np.linalg.norm(np.diff(world, axis=0), axis=-1).sum(axis=0)


def test_no_body_point_moves_farther_than_the_motion_bound():
    rng = np.random.default_rng(3)
    body = panda_body(dtype=torch.float64)
    ratios = []
    for trial in range(12):
        q0 = random_q(rng, 1)[0]
        dq = rng.normal(size=7) * (0.05 if trial % 2 else 0.8)
        if trial < 7:   # one joint alone: the lever arm itself
            dq = np.eye(7)[trial] * 0.5
        moved = surface_points_along(body, q0, dq, seed=trial).max()
        bound = body.motion_bound(dq)
        assert moved <= bound + 1e-9, (trial, moved, bound)
        ratios.append(moved / bound)
    assert max(ratios) > 0.6   # the bound is not vacuous either


def test_lever_arms_are_constant_and_shaped_like_the_arm():
    arms = panda_body().lever_arms()
    assert arms.shape == (7,)
    assert np.all(np.diff(arms) <= 1e-12)   # a joint nearer the base moves more
    assert 0.9 < arms[0] < 1.2 and 0.04 < arms[6] < 0.06   # reach; the last link's radius
    np.testing.assert_allclose(panda_body().motion_bound(np.ones((3, 7))), arms.sum())


def test_covers_of_boxes_cylinders_and_meshes_are_conservative_and_tight():
    import trimesh
    rng = np.random.default_rng(4)
    size = np.array([0.3, 0.1, 0.02])
    spheres = box_cover(size, 0.01)
    inside = (rng.random((5000, 3)) - 0.5) * size
    inside[:1000, 0] = np.sign(inside[:1000, 0]) * size[0] / 2   # faces
    inside[1000:1100] = np.sign(inside[1000:1100]) * size / 2   # corners
    assert covered(inside, spheres).all()
    # how far the spheres reach beyond the box: points all over their surfaces
    u = rng.normal(size=(4000, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    rim = (spheres[:, None, :3] + spheres[:, None, 3:] * u).reshape(-1, 3)
    reach = np.linalg.norm(np.maximum(np.abs(rim) - size / 2, 0), axis=1)
    assert 0.005 < reach.max() <= 0.01
    cylinder = cylinder_cover(0.05, 0.4, 0.01)
    radial = np.max(cylinder[:, 3]) - 0.05
    assert 0 < radial <= 0.01 and covered(inside_cylinder(rng, 0.05, 0.4, 5000), cylinder).all()
    annulus = trimesh.creation.annulus(r_min=0.03, r_max=0.08, height=0.04, sections=32)
    mesh = mesh_cover(annulus.vertices, annulus.faces, 0.01)
    rho = 0.03 + (0.08 * np.cos(np.pi / 32) - 0.03) * rng.random(5000)
    phi = rng.random(5000) * 2 * np.pi
    points = np.stack([rho * np.cos(phi), rho * np.sin(phi), (rng.random(5000) - 0.5) * 0.04], 1)
    assert covered(points, mesh).all()
    assert not covered(np.array([[0.0, 0.0, 0.0]]), mesh).any()   # the hole stays open


def test_sphere_file_replaces_a_links_geometry():
    body = panda_body(spheres={"panda_link7": [[0, 0, 0.05, 0.06]],
                               "panda_link0": []})
    assert "panda_link0" not in body.link_names
    seven = body.sphere_links == body.link_names.index("panda_link7")
    assert seven.sum() == 1 and float(body.radii[seven][0]) == pytest.approx(0.06)


def test_joints_not_driven_are_held_at_zero_within_their_limits():
    body = RobotBody.from_urdf(PANDA, [n for n in NAMES if n != "panda_joint4"],
                               dtype=torch.float64)
    assert body.fixed_joints == ["panda_joint4"]
    q = random_q(np.random.default_rng(5), 4)
    q[:, 3] = -0.0698   # panda_joint4's limits exclude 0: held at its upper limit
    full = panda_body(dtype=torch.float64).sphere_centres(q)
    np.testing.assert_allclose(body.sphere_centres(np.delete(q, 3, 1)).numpy(), full.numpy())


def mesh_urdf(filename):
    return PANDA.replace(
        '<cylinder radius="0.04" length="0.1"/>', '<mesh filename="%s"/>' % filename)


def test_meshes_resolve_through_package_dirs_or_the_error_names_the_link(tmp_path):
    import trimesh
    (tmp_path / "meshes").mkdir()
    trimesh.creation.box(extents=[0.08, 0.08, 0.1]).export(tmp_path / "meshes" / "hand.stl")
    urdf = mesh_urdf("package://my_robot/meshes/hand.stl")
    with pytest.raises(URDFError, match="panda_link7.*package_dirs.*sphere file") as error:
        RobotBody.from_urdf(urdf, NAMES)
    assert "my_robot" not in str(error.value) and "hand.stl" not in str(error.value)
    body = RobotBody.from_urdf(urdf, NAMES, package_dirs={"my_robot": str(tmp_path)})
    seven = body.sphere_links == body.link_names.index("panda_link7")
    assert seven.sum() > 8   # voxel cells, not one sphere
    fine = RobotBody.from_urdf(urdf, NAMES, spheres={"panda_link7": [[0, 0, 0, 0.1]]})
    assert "panda_link7" in fine.link_names


def test_unknown_joint_or_link_is_refused_by_name_only():
    secret_urdf = PANDA.replace('name="panda"', 'name="SECRET-CONTENT"')
    with pytest.raises(URDFError, match="'elbow'.*movable joint") as error:
        RobotBody.from_urdf(secret_urdf, NAMES[:3] + ["elbow"])
    assert "SECRET" not in str(error.value) and "panda_link" not in str(error.value)
    with pytest.raises(URDFError, match="'gripper'"):
        panda_body(spheres={"gripper": [[0, 0, 0, 0.1]]})
    with pytest.raises(ValueError, match="panda_link7"):
        panda_body(spheres={"panda_link7": [[0, 0, 0, -0.1]]})
    with pytest.raises(URDFError, match="DOCTYPE"):
        RobotBody.from_urdf('<!DOCTYPE robot []><robot name="x"/>', NAMES)
    with pytest.raises(ValueError, match=r"\(B, 7\)"):
        panda_body().sphere_centres(np.zeros((2, 6)))
