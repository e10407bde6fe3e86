"""Signed distances to each primitive, the body's clearance, and the check of a whole
motion, the stretch between two rows included."""
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from latent_geodesics.world.body import RobotBody
from latent_geodesics.world.collision import CollisionChecker, signed_distances
from latent_geodesics.world.scene import Scene, Shape, WorldObject

PANDA = (Path(__file__).resolve().parents[1] / "urdf" / "panda.urdf").read_text()
NAMES = ["panda_joint%d" % i for i in range(1, 8)]
FRAME = "panda_link0"
HOME = np.array([0.0, -0.3, 0.0, -2.0, 0.0, 1.8, 0.8])


def pose(position=(0, 0, 0), rotvec=(0, 0, 0)):
    out = np.eye(4)
    out[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    out[:3, 3] = position
    return out


def one(shape, at=None):
    return Scene(FRAME).add(WorldObject("thing", pose() if at is None else at, (shape,)))


def distance(scene, point):
    return float(signed_distances(scene, np.array([point], dtype=float))[0, 0])


def test_box_distances_inside_outside_and_past_an_edge():
    turned = pose([1.0, 2.0, 3.0], [0, 0, np.pi / 2])   # box x along the root's y
    scene = one(Shape.box([0.2, 0.4, 0.6]), turned)
    assert distance(scene, [1, 2, 3]) == pytest.approx(-0.1)
    assert distance(scene, [1, 2.1 + 0.05, 3]) == pytest.approx(0.05)   # x face, turned
    assert distance(scene, [1.2 + 0.03, 2, 3]) == pytest.approx(0.03)   # y face
    assert distance(scene, [1, 2.1 + 0.03, 3.3 + 0.04]) == pytest.approx(0.05)   # an edge
    assert distance(scene, [1.2, 2.1, 3.3]) == pytest.approx(0.0, abs=1e-12)   # a corner
    assert distance(scene, [1, 2.05, 3]) == pytest.approx(-0.05)   # nearest face inside


def test_sphere_and_cylinder_distances():
    assert distance(one(Shape.sphere(0.5), pose([1, 0, 0])), [1, 0, 2]) == pytest.approx(1.5)
    assert distance(one(Shape.sphere(0.5), pose([1, 0, 0])), [1.1, 0, 0]) \
        == pytest.approx(-0.4)
    lying = one(Shape.cylinder(2.0, 0.5), pose([0, 0, 1], [np.pi / 2, 0, 0]))   # axis along y
    assert distance(lying, [0, 0, 1 + 0.7]) == pytest.approx(0.2)   # off the mantle
    assert distance(lying, [0, 1.3, 1]) == pytest.approx(0.3)   # off a flat end
    assert distance(lying, [0.8, 1.4, 1]) == pytest.approx(0.5)   # past the rim: 0.3, 0.4
    assert distance(lying, [0.1, 0, 1]) == pytest.approx(-0.4)   # inside: nearer the mantle
    assert distance(lying, [0, 0.9, 1]) == pytest.approx(-0.1)   # inside: nearer an end


def test_an_object_is_the_union_of_its_shapes_and_of_its_spheres():
    spheres = Shape("spheres", [[0, 0, 0, 0.1], [1, 0, 0, 0.2]])
    obj = WorldObject("pair", pose([0, 0, 1]), (spheres, Shape.box([0.1, 0.1, 0.1],
                                                                   pose([0, 2, 0]))))
    scene = Scene(FRAME).add(obj).add(WorldObject("far", pose([9, 9, 9]),
                                                  (Shape.sphere(1.0),)))
    d = signed_distances(scene, np.array([[1, 0, 1.5], [0, 2.5, 1], [0, 0, 1]])).numpy()
    assert scene.object_ids == ["far", "pair"]
    np.testing.assert_allclose(d[:, 1], [0.3, 0.45, -0.1])
    np.testing.assert_allclose(d[0, 0], np.linalg.norm([8, 9, 7.5]) - 1.0)


def panda(**kwargs):
    return RobotBody.from_urdf(PANDA, NAMES, **kwargs)


def dense_clearance(body, scene, q):
    """Smallest sphere clearance, every sphere against every object."""
    centres = body.sphere_centres(q).double()
    d = signed_distances(scene, centres.reshape(-1, 3)).reshape(len(q), -1, len(scene.objects))
    return (d - body.radii.double()[None, :, None]).flatten(1).min(1).values.numpy()


def random_scene(rng, count=10):
    shapes = [lambda: Shape.box(rng.uniform(0.03, 0.3, 3)),
              lambda: Shape.sphere(rng.uniform(0.02, 0.1)),
              lambda: Shape.cylinder(rng.uniform(0.05, 0.4), rng.uniform(0.01, 0.08))]
    scene = Scene(FRAME)
    for i in range(count):
        at = pose(rng.uniform([-0.7, -0.7, 0.0], [0.7, 0.7, 1.0]), rng.normal(size=3))
        scene = scene.add(WorldObject("o%d" % i, at, (shapes[i % 3](),)))
    return scene


def test_clearance_is_the_exact_smallest_over_spheres_and_objects():
    rng = np.random.default_rng(0)
    body = panda()
    scene = random_scene(rng)
    checker = CollisionChecker(body, scene)
    q = rng.uniform(-2, 2, (3000, 7))
    clearance, link, obj = checker.clearance(q)
    np.testing.assert_allclose(clearance, dense_clearance(body, scene, torch.tensor(q)),
                               atol=2e-6)
    assert 0.01 < (clearance < 0).mean() < 0.9   # the scene is neither empty nor full
    # the link and the object named are the ones whose spheres are that near
    row = int(np.argmin(clearance))
    mine = body.sphere_links == link[row]
    centres = body.sphere_centres(q[row:row + 1])[0, mine].double()
    one_object = Scene(FRAME).add(scene.objects[checker.object_ids[obj[row]]])
    own = signed_distances(one_object, centres)[:, 0] - body.radii[mine].double()
    assert float(own.min()) == pytest.approx(clearance[row], abs=2e-6)
    contact = checker.nearest(q)
    assert (contact.index, contact.clearance) == (row, pytest.approx(clearance[row]))
    assert contact.link == body.link_names[link[row]]


def test_an_empty_scene_is_clear_everywhere():
    checker = CollisionChecker(panda(), Scene(FRAME))
    clearance, link, obj = checker.clearance(np.zeros((4, 7)))
    assert np.all(np.isinf(clearance)) and np.all(link == -1) and np.all(obj == -1)
    assert checker.check_path(np.zeros((3, 7))) is None


def test_no_configurations_have_no_clearances():
    # A scene whose objects lie far from every graph edge leaves no edge to check.
    checker = CollisionChecker(panda(), one(Shape.box([0.1, 1.0, 1.0]), pose((-1.0, 0, 0.5))))
    clearance, link, obj = checker.clearance(np.zeros((0, 7)))
    assert clearance.shape == link.shape == obj.shape == (0,)


def test_clearance_gradients_through_shapes_of_several_kinds():
    # The metric's obstacle barrier differentiates clearance_tensor: a box, a sphere
    # and a mesh (a union of spheres) in one scene.
    tetra = Shape.mesh(np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0], [0, 0, 0.1]]),
                       np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]))
    scene = Scene(FRAME)
    for name, shape, at in (("box", Shape.box([0.1, 0.1, 0.1]), (0.4, 0.2, 0.5)),
                            ("ball", Shape.sphere(0.05), (0.4, -0.2, 0.5)),
                            ("tetra", tetra, (0.5, 0.0, 0.3))):
        scene = scene.add(WorldObject(name, pose(at), (shape,)))
    checker = CollisionChecker(panda(), scene)
    q = torch.tensor(np.stack([HOME, HOME + 0.1]), dtype=checker.body.dtype,
                     requires_grad=True)
    clearance = checker.clearance_tensor(q)
    clearance.amin(dim=(1, 2)).sum().backward()
    assert clearance.shape[2] == 3 and torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0
    np.testing.assert_allclose(clearance.amin(dim=(1, 2)).detach().numpy(),
                               checker.clearance(q.detach().numpy())[0], atol=1e-5)


def hand(body, q):
    """The centre of panda_link7's spheres at q."""
    mine = body.sphere_links == body.link_names.index("panda_link7")
    return body.sphere_centres(q[None]).double()[0, mine].mean(0).numpy()


def test_check_path_finds_an_object_only_the_middle_of_a_segment_passes():
    body = panda()
    start, goal = HOME.copy(), HOME.copy()
    start[0], goal[0] = -0.6, 0.6   # the hand sweeps an arc around the base
    middle = hand(body, (start + goal) / 2)
    scene = one(Shape.sphere(0.03), pose(middle))
    checker = CollisionChecker(body, scene)
    rows = np.stack([start, goal])
    clearance, _, _ = checker.clearance(rows)
    assert np.all(clearance > 0.1)   # both rows are far from it
    contact = checker.check_path(rows)
    assert contact is not None and contact.index == 0 and 0.3 < contact.fraction < 0.7
    assert contact.object == "thing" and contact.link in ("panda_link6", "panda_link7")
    assert contact.clearance < 0
    assert checker.smallest(rows).clearance == pytest.approx(clearance.min())
    # the same rows with the object moved off the sweep are clear, also with a margin
    clear = CollisionChecker(body, scene.move("thing", pose(middle + [0, 0, 0.5])))
    assert clear.check_path(rows, margin=0.02) is None
    assert clear.check_path(np.linspace(start, goal, 7), margin=np.full(7, 0.02)) is None


def test_check_path_never_says_clear_where_a_sample_comes_within_the_margin():
    rng = np.random.default_rng(1)
    body = panda()
    outcomes = []
    for trial in range(25):
        scene = random_scene(rng, count=4)
        checker = CollisionChecker(body, scene)
        rows = np.cumsum(rng.normal(scale=0.3, size=(4, 7)), axis=0) + HOME
        margin = 0.01
        contact = checker.check_path(rows, margin=margin)
        fine = np.vstack([np.linspace(a, b, 400) for a, b in zip(rows[:-1], rows[1:])])
        lowest = checker.clearance(fine)[0].min()
        if contact is None:
            assert lowest >= margin, trial
        else:   # a contact found is near what dense sampling sees (within a sub-step)
            assert contact.clearance <= lowest + 0.005 or contact.clearance < margin
        outcomes.append(contact is None)
    assert 3 <= sum(outcomes) <= 22   # both answers occur


def test_the_first_contact_along_the_path_is_reported():
    body = panda()
    start, goal = HOME.copy(), HOME.copy()
    start[0], goal[0] = -0.6, 0.6
    rows = np.linspace(start, goal, 5)
    late = hand(body, rows[3] + (rows[4] - rows[3]) * 0.5)
    early = hand(body, rows[1])
    scene = one(Shape.sphere(0.03), pose(late)).add(
        WorldObject("early", pose(early), (Shape.sphere(0.03),)))
    contact = CollisionChecker(body, scene).check_path(rows)
    assert contact.object == "early" and contact.index in (0, 1)


def test_clearance_within_a_reach_is_the_clearance_below_it_with_its_gradient():
    """The barrier's clearance measures only the pairs that may come within reach:
    below reach the same values and gradients as the full clearance, reach above."""
    rng = np.random.default_rng(2)
    body = panda()
    checker = CollisionChecker(body, random_scene(rng, count=6))
    q = torch.tensor(HOME + rng.normal(scale=0.6, size=(400, 7)), dtype=body.dtype,
                     requires_grad=True)
    full = checker.clearance_tensor(q).amin(dim=(1, 2))
    for reach in (0.02, 0.06):
        near = checker.clearance_within(q, reach)
        expected = full.clamp(max=reach)
        assert 0 < int((expected < reach).sum()) < len(q)   # both cases arise
        assert torch.allclose(near, expected, atol=1e-6)
        grad, = torch.autograd.grad(near.sum(), q, retain_graph=True)
        want, = torch.autograd.grad(expected.sum(), q, retain_graph=True)
        assert torch.allclose(grad, want, atol=1e-4)


def test_a_motion_far_from_the_objects_is_certified_with_few_samples():
    """Adaptive sampling: far from every object the bound between the rows holds
    and nothing between them is measured; near one, the motion is sampled finely."""
    body = panda()
    start, goal = HOME.copy(), HOME.copy()
    start[0], goal[0] = -0.6, 0.6
    rows = np.linspace(start, goal, 4)
    far = CollisionChecker(body, one(Shape.sphere(0.03), pose([0.0, 0.0, 2.5])))
    measured = []
    original = far.clearance
    far.clearance = lambda q: measured.append(len(q)) or original(q)
    assert far.check_path(rows, margin=0.02, resolution=0.005) is None
    uniform = np.ceil(body.motion_bound(np.diff(rows, axis=0)) / 0.005).sum()
    assert sum(measured) == len(rows) < uniform / 20
    near = CollisionChecker(body, one(Shape.sphere(0.03), pose(hand(body, (start + goal) / 2))))
    samples = near._samples(rows, 0.02, 0.005)[0]
    assert len(samples) > 4 * len(rows)
