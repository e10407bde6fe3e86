"""The robot's world in what the engine serves: motions keep clear of the scene's
objects (by an independent dense check of the URDF geometry, not the sphere cover the
planner uses), colliding ends are refused by name, a scene update applies to the next
request, and the metric prices nearness to objects."""
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.interpolate import BPoly

from latent_geodesics.geometry.metric import LatentMetric
from latent_geodesics.serving import world as serving_world
from latent_geodesics.serving.detour import bend, fit_rows
from latent_geodesics.serving.engine import Engine, RequestError, Settings
from latent_geodesics.serving.parsing import endpoints, run_model
from latent_geodesics.serving.planning import plan
from latent_geodesics.serving.roadmap import around
from latent_geodesics.serving.trajectory import spline_peaks, time_parametrize
from latent_geodesics.world.collision import CollisionChecker
from latent_geodesics.world.scene import Shape, WorldObject
from latent_geodesics.world.verification import dense_collisions

PANDA = (Path(__file__).resolve().parents[1] / "urdf" / "panda.urdf").read_text()
SPACING = 0.003   # m between the independent check's samples (1 mm in the bench)


@pytest.fixture(scope="module")
def engine(arm_model_dir):
    return Engine(arm_model_dir, Settings(device="cpu", graph_cache=False),
                  robot_description=PANDA, log=lambda m: None)


def at(position):
    pose = np.eye(4)
    pose[:3, 3] = position
    return pose


def ball(name, centre, radius=0.06):
    return WorldObject(name, at(centre), (Shape.sphere(radius),))


def clear_scene(engine):
    engine.world.update(lambda scene: scene.remove(None))


@pytest.fixture(scope="module")
def pair(engine, arm):
    """Two recorded poses far apart, their served motion without objects, and a point
    that motion's hand passes mid-way."""
    rng = np.random.default_rng(4)
    names = list(engine.served.joint_names)
    clear_scene(engine)
    while True:
        a, b = rng.choice(len(arm.data), 2, replace=False)
        if np.abs(arm.data[a] - arm.data[b]).max() > 1.0:
            break
    ends = (names, list(arm.data[a]), []), (names, list(arm.data[b]), [])
    free = engine.graph_geodesic(*ends)
    body = engine.served.body
    middle = free.positions[len(free.positions) // 2]
    hand = body.sphere_centres(middle[None])[0].detach().numpy()[body.sphere_links == 7][0]
    return ends, free, hand


def independent(engine, positions):
    return dense_collisions(PANDA, list(engine.served.joint_names), engine.world.scene,
                            positions, spacing=SPACING)


def test_an_empty_scene_changes_nothing(engine, pair):
    ends, free, _ = pair
    clear_scene(engine)
    again = engine.graph_geodesic(*ends)
    np.testing.assert_array_equal(again.positions, free.positions)
    assert free.stats.min_clearance == np.inf and free.stats.clearance_object == ""


def test_served_motions_go_around_an_object_on_the_demonstrated_way(engine, pair):
    ends, free, hand = pair
    engine.world.update(lambda scene: scene.add(ball("ball", hand)))
    try:
        assert independent(engine, free.positions).collides   # the old motion hits it
        for result in (engine.graph_geodesic(*ends), engine.nn_geodesic(*ends)):
            check = independent(engine, result.positions)
            assert not check.collides and check.clearance > 0, check
            assert result.stats.min_clearance > 0
            assert result.stats.clearance_object == "ball"
            assert result.stats.clearance_link.startswith("panda_link")
            np.testing.assert_allclose(result.positions[[0, -1]], free.positions[[0, -1]])
    finally:
        clear_scene(engine)


def test_a_straight_latent_line_through_an_object_is_measured_with_its_barrier(engine, pair):
    """Through an object the straight line is measured with the barrier, as the path
    is: by the search's candidates, or by plan where a search left it unmeasured."""
    ends, free, _ = pair
    middle = run_model(engine.served, "decode", free.latent[[0, -1]].mean(0)[None])
    body = engine.served.body
    hand = body.sphere_centres(middle)[0].detach().numpy()[body.sphere_links == 7][0]
    engine.world.update(lambda scene: scene.add(ball("ball", hand)))
    try:
        blocked = engine.graph_geodesic(*ends)
        assert blocked.stats.clearance_object == "ball"
        assert blocked.straight_line_length > 1.05 * free.straight_line_length
        # plan's own measure where the search left the straight line out (NaN)
        served = engine.served
        (zs, qs), (zg, qg) = endpoints(served, engine.settings, *ends)
        world = engine.world_for(served, (zs, qs), (zg, qg))
        path = engine.graph_path(served, zs, zg, world)
        path.stats.straight_length = float("nan")
        planned = plan(served, engine.settings, path, qs, qg, (1.0, 1.0), world)
        line = np.stack([zs, zg])
        assert planned.straight_line_length == pytest.approx(
            world.metric.polyline_length(line, served.graph.step))
        assert planned.straight_line_length > 1.05 * served.graph.measure(line)
    finally:
        clear_scene(engine)


def test_a_scene_update_applies_to_the_next_request(engine, pair):
    ends, free, hand = pair
    engine.world.update(lambda scene: scene.add(ball("ball", hand)))
    around = engine.graph_geodesic(*ends)
    engine.world.update(lambda scene: scene.remove("ball"))
    back = engine.graph_geodesic(*ends)
    assert not np.array_equal(around.positions, free.positions)
    np.testing.assert_array_equal(back.positions, free.positions)


def test_edges_one_request_finds_too_near_are_left_out_of_the_next(engine, pair):
    """The scene's lazy index: a node path's edges are decoded and checked once per
    scene, and those too near an object are blocked for every later request."""
    ends, free, hand = pair
    graph = engine.served.graph
    node_path = np.array(graph.shortest_path(free.latent[0], free.latent[-1],
                                             shorten=False).stats.node_path)
    engine.world.update(lambda scene: scene.add(ball("ball", hand)))
    try:
        world = engine.world.view(engine.served)
        before = world.blocked(0.02)
        near = world.near_edges(node_path, 0.02)
        assert len(near) > 0
        after = world.blocked(0.02)
        searched = near[(world.node_clearance[near] >= 0).all(axis=1)]   # the rest: cut
        assert len(searched) > 0
        assert after[world.search().positions(searched)].all()
        assert (after | before).sum() == after.sum() > before.sum()

        def decode_again(edges):
            raise AssertionError("edge decoded twice in one scene")
        world.edges.decoded_bounds = decode_again   # each edge is checked once per scene
        np.testing.assert_array_equal(world.near_edges(node_path, 0.02), near)
    finally:
        clear_scene(engine)


@pytest.mark.parametrize("end", ["start", "goal"])
def test_an_end_inside_an_object_is_refused_by_link_and_object(engine, pair, end):
    ends, free, _ = pair
    body = engine.served.body
    pose = free.positions[0 if end == "start" else -1]
    hand = body.sphere_centres(pose[None])[0].detach().numpy()[body.sphere_links == 7][0]
    engine.world.update(lambda scene: scene.add(ball("cup", hand, 0.03)))
    try:
        with pytest.raises(RequestError, match=r"the %s pose collides: panda_link\d is "
                                               r"[0-9.]+ m inside cup" % end):
            engine.graph_geodesic(*ends)
    finally:
        clear_scene(engine)


def test_objects_without_a_robot_body_are_refused(arm_model_dir, pair):
    ends, _, hand = pair
    bodiless = Engine(arm_model_dir, Settings(device="cpu", graph_cache=False),
                      log=lambda m: None)
    assert bodiless.served.body is None
    bodiless.world.update(lambda scene: scene.add(ball("ball", hand)))
    with pytest.raises(RequestError, match="no robot body.*robot_description"):
        bodiless.graph_geodesic(*ends)


def test_a_timed_motion_through_an_object_is_refused_with_link_object_and_time(engine, pair):
    _, free, hand = pair
    engine.world.update(lambda scene: scene.add(ball("ball", hand)))
    try:
        world = engine.world.view(engine.served)
        timing = time_parametrize(free.positions, engine.served.limits)
        with pytest.raises(RequestError, match=r"would collide: panda_link\d reaches ball at "
                                               r"t = [0-9.]+ s"):
            world.check_motion(timing, spline_peaks(timing)[1])
    finally:
        clear_scene(engine)


def test_an_object_on_the_rest_of_a_running_motion_is_found_and_one_behind_is_not(engine, pair):
    from latent_geodesics.serving.service import GeodesicService
    _, free, hand = pair
    service = GeodesicService(engine, None, lambda: 0.0, print)
    engine.world.update(lambda scene: scene.add(ball("ball", hand)))
    try:
        hit, when = service.obstruction(free, 0.0)
        assert hit.object == "ball" and 0 < when < free.times[-1]
        assert service.obstruction(free, float(free.times[-1]) - 1e-3) is None
        with pytest.raises(RequestError, match=r"not executed: ball is on the path at t = "):
            service.check_scene(free)   # what ~execute asks as it sends the goal
    finally:
        clear_scene(engine)


def test_the_barrier_makes_paths_near_objects_longer():
    """with_ambient appends term(x) to the embedding: a curve pays every rise and fall
    of it (a bump of height 5 at the origin: crossing it costs between the larger and
    the sum of the plain length and its 2 x 5 rise and fall)."""
    metric = LatentMetric(lambda z: 2.0 * z)
    bump = metric.with_ambient(lambda x: 5.0 * torch.exp(-(x ** 2).sum(-1, keepdim=True)), 2)
    t = torch.linspace(-2, 2, 101, dtype=torch.float64)[:, None]
    through = torch.cat([t, torch.zeros_like(t)], 1)
    far = through + torch.tensor([0.0, 30.0], dtype=torch.float64)
    plain = float(metric.curve_length(through))
    assert max(plain, 10.0) + 2 < float(bump.curve_length(through)) <= plain + 10.0
    assert float(bump.curve_length(far)) == pytest.approx(float(metric.curve_length(far)),
                                                         rel=1e-9)


def test_the_barrier_skips_only_what_a_node_bounds_beyond_its_reach(engine, pair, arm):
    """KnownClearances: the clearance a graph node has, less how far the body can move
    from it, never exceeds the clearance measured; the barrier that skips the rows so
    bounded beyond its reach equals the one that measures every row (and skips some)."""
    _, _, hand = pair
    engine.world.update(lambda scene: scene.add(ball("skip", hand)))
    try:
        world = engine.world.view(engine.served)
        known = world.barrier.known
        rng = np.random.default_rng(5)
        q = arm.data[rng.choice(len(arm.data), 400, replace=False)] \
            + rng.normal(0.0, 0.05, (400, arm.data.shape[1]))
        exact = world.checker.clearance(q)[0]
        lower = known.lower(q)
        assert (lower <= exact + 1e-6).all() and (lower > world.barrier.influence).any()
        rows = torch.as_tensor(q, dtype=torch.float32)
        skipping = world.barrier(rows)
        world.barrier.known = None
        measuring = world.barrier(rows)
        world.barrier.known = known
        assert torch.allclose(skipping, measuring, atol=1e-6) and (measuring > 0).any()
    finally:
        clear_scene(engine)


def test_a_bend_clears_an_object_and_keeps_the_ends(engine):
    body = engine.served.body
    q0 = np.array([0.0, -0.5, 0.0, -2.0, 0.0, 1.6, 0.8])
    q1 = q0 + np.array([1.2, 0.3, 0.0, 0.3, 0.0, 0.0, 0.0])
    line = q0 + np.linspace(0, 1, 80)[:, None] * (q1 - q0)
    hand = body.sphere_centres(line[40][None])[0].detach().numpy()[body.sphere_links == 7][0]
    checker = CollisionChecker(body, engine.world.scene.add(ball("ball", hand, 0.05)))
    assert checker.smallest(line).clearance < 0
    bent = bend(checker, line, 0.02)
    assert bent is not None
    assert checker.smallest(bent).clearance >= 0.02 - 1e-6
    assert not checker.violations(bent, 0.02, 0.005).any()   # between the rows too
    np.testing.assert_allclose(bent[[0, -1]], line[[0, -1]], atol=1e-6)


def test_the_roadmap_goes_around_an_object_keeping_the_rest_of_the_motion(engine):
    served = engine.served
    q0 = np.array([0.0, -0.5, 0.0, -2.0, 0.0, 1.6, 0.8])
    line = q0 + np.linspace(0, 1, 80)[:, None] * np.array([1.2, 0.3, 0.0, 0.3, 0.0, 0.0, 0.0])
    hand = served.body.sphere_centres(line[40][None])[0].detach().numpy()[
        served.body.sphere_links == 7][0]
    checker = CollisionChecker(served.body, engine.world.scene.add(ball("ball", hand, 0.08)))
    limits = (served.limits.lower, served.limits.upper)
    way = around(checker, line, 0.02, 0.005, limits, served.recorded)
    assert checker.violations(line, 0.02, 0.005).any()
    assert way is not None and not checker.violations(way, 0.02, 0.005).any()
    assert np.all((way >= limits[0]) & (way <= limits[1]))
    np.testing.assert_array_equal(way[[0, -1]], line[[0, -1]])
    assert np.abs(np.diff(way, axis=0)).max() <= np.abs(np.diff(line, axis=0)).max() + 1e-9
    # rows clear of the object on both sides are kept as they were
    np.testing.assert_array_equal(way[:5], line[:5])
    np.testing.assert_array_equal(way[-5:], line[-5:])
    # seeded: the same request gets the same way
    np.testing.assert_array_equal(way, around(checker, line, 0.02, 0.005, limits,
                                              served.recorded))


def test_where_the_bend_fails_the_roadmap_clears_the_motion(engine, pair, monkeypatch):
    ends, free, hand = pair
    engine.world.update(lambda scene: scene.remove(None).add(ball("ball", hand)))
    try:
        served = engine.served
        request = engine.world.request(served, (None, free.positions[0]),
                                       (None, free.positions[-1]))
        checker = request.world.checker
        assert checker.violations(free.positions, request.margin, 0.005).any()
        monkeypatch.setattr(serving_world, "bend", lambda *args: None)
        cleared, how = request.keep_clear(free.positions)
        assert how == "roadmap"
        assert not checker.violations(cleared, request.margin, 0.005).any()
        check = independent(engine, cleared)
    finally:
        clear_scene(engine)
    assert not check.collides, check
    np.testing.assert_array_equal(cleared[[0, -1]], free.positions[[0, -1]])


def test_a_start_millimetres_from_an_object_is_served_clear_of_it(engine, pair):
    """The curve between the first samples may only stray as far as the start's own
    clearance allows: the first and last intervals are sampled finely (a uniform
    allowance refused every such start)."""
    ends, free, _ = pair
    body, start = engine.served.body, free.positions[0]
    hand = body.sphere_centres(start[None])[0].detach().numpy()[body.sphere_links == 7]
    above = at(hand.mean(axis=0) + np.array([0.0, 0.0, 0.12]))
    low, high = 0.0, 0.2   # the ball's radius that leaves the start 2 mm from it
    for _ in range(30):
        radius = (low + high) / 2
        scene = engine.world.scene.remove(None).add(
            WorldObject("ball", above, (Shape.sphere(radius),)))
        clear = CollisionChecker(body, scene).clearance(start[None])[0][0] > 0.002
        low, high = (radius, high) if clear else (low, radius)
    engine.world.update(lambda old: scene)
    try:
        result = engine.graph_geodesic(*ends)
        # the curve a controller draws (the quintic between the points), densely
        t = result.time_ns / 1e9
        quintic = BPoly.from_derivatives(t, np.stack([result.positions, result.velocities,
                                                      result.accelerations], 1))
        check = independent(engine, quintic(np.linspace(0.0, t[-1], 40 * len(t))))
    finally:
        clear_scene(engine)
    assert 0 < result.stats.min_clearance < 0.003
    assert not check.collides, check


def test_the_bend_fits_rows_that_stand_for_the_whole_motion(engine):
    body = engine.served.body
    q0 = np.array([0.0, -0.5, 0.0, -2.0, 0.0, 1.6, 0.8])
    line = q0 + np.linspace(0, 1, 400)[:, None] * np.array([1.2, 0.3, 0.0, 0.3, 0.0, 0.0, 0.0])
    rows = fit_rows(body, line, step=0.01)
    assert rows[0] == 0 and rows[-1] == len(line) - 1 and len(rows) < len(line) / 2
    travelled = np.r_[0.0, np.cumsum(body.motion_bound(np.diff(line, axis=0)))]
    # every row left out lies within one step of body motion after the last row kept
    for kept, following in zip(rows[:-1], rows[1:]):
        assert travelled[following - 1] - travelled[kept] < 0.01 + 1e-12


def test_geodesic_lengths_measure_the_graph_the_scene_leaves(engine, pair):
    ends, _, hand = pair
    clear_scene(engine)
    free = engine.geodesic_lengths([ends[0]], [ends[1]])
    engine.world.update(lambda scene: scene.add(ball("ball", hand)))
    try:
        try:
            blocked = engine.geodesic_lengths([ends[0]], [ends[1]])
        except RequestError as e:   # the ball cut every way along the demonstrations
            assert "no way along the demonstrations" in str(e)
            return
        assert blocked[0, 0] > free[0, 0]   # the way around is longer
    finally:
        clear_scene(engine)


def test_a_replaced_stretch_keeps_the_latent_points_of_the_rows_around_it():
    from latent_geodesics.serving.planning import rows_like
    z = np.arange(10.0)[:, None] * np.array([[1.0, -1.0]])
    q = np.arange(10.0)[:, None] * np.ones((1, 3))
    dense = np.vstack([q[:3], np.full((5, 3), 50.0), q[7:]])   # rows 3-6 replaced by 5
    matched = rows_like(z, q, dense)
    assert matched.shape == (len(dense), 2)
    np.testing.assert_array_equal(matched[:3], z[:3])
    np.testing.assert_array_equal(matched[-3:], z[7:])
    np.testing.assert_allclose(matched[3:8, 0], np.linspace(3.0, 6.0, 5))
    assert rows_like(z, q, q) is z


def test_each_sample_of_the_timed_check_keeps_the_slack_of_the_intervals_it_touches(
        engine, pair):
    from latent_geodesics.serving.trajectory import Timing
    from latent_geodesics.serving.world import END_SUBSTEPS, MOTION_SUBSTEPS
    ends, free, hand = pair
    engine.world.update(lambda scene: scene.remove(None).add(ball("far", hand + 2.0)))
    try:
        world = engine.world.view(engine.served)
        timing = Timing(free.positions, free.time_ns, free.velocities, free.accelerations)
        a_peak = spline_peaks(timing)[1]
        _, ts, _, slack = world.first_contact(timing, a_peak)
        t = timing.times
        spread = engine.served.body.motion_bound(
            a_peak[None] * (np.diff(t) / np.r_[END_SUBSTEPS, [MOTION_SUBSTEPS] * (len(t) - 3),
                                               END_SUBSTEPS])[:, None] ** 2 / 8)
        assert len(ts) == 2 * END_SUBSTEPS + MOTION_SUBSTEPS * (len(t) - 3) + 1
        for i, when in enumerate(ts):   # every interval a sample bounds
            touched = np.flatnonzero((t[:-1] <= when + 1e-12) & (when - 1e-12 <= t[1:]))
            assert slack[i] >= spread[touched].max() - 1e-15, i
        since = 0.5 * (t[1] + t[2])   # mid-way through the second interval
        _, later, _, later_slack = world.first_contact(timing, a_peak, since=since)
        assert later[0] == since and later_slack[0] >= spread[1] - 1e-15
        _, after, _, _ = world.first_contact(timing, a_peak, since=t[-1] + 5.0)
        assert after[0] == t[-1]   # a motion already over: its last pose
    finally:
        clear_scene(engine)
