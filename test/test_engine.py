"""The server's ROS-free logic: request checking, geodesics, cache, reload."""
import os
import shutil
import threading

import numpy as np
import pytest

from latent_geodesics.errors import ConfigError
from latent_geodesics.model.loading import cache_path
from latent_geodesics.serving.engine import Engine, RequestError, Settings
from latent_geodesics.serving.parsing import run_model, scaling_factors


@pytest.fixture(scope="module")
def engine(arm_model_dir, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("engine") / "model")
    shutil.copytree(arm_model_dir, d, ignore=shutil.ignore_patterns("graph_*.npz"))
    return Engine(d, Settings(device="cpu"), log=lambda m: None)


def test_graph_cache_written_and_used(engine):
    assert os.path.isfile(cache_path(engine.served.model, 10, 10))
    assert engine.served.info["graph_source"] == "built"     # no cache was copied
    assert engine.reload().info["graph_source"] == "loaded from cache"


def test_changed_settings_rebuild(engine):
    other = Engine(engine.served.model.directory, Settings(device="cpu", k=6), log=lambda m: 0)
    assert other.served.info["graph_source"] == "built"
    assert other.served.graph.k == 6


def test_encode_orders_joints_by_name(engine):
    names = list(engine.served.joint_names)
    q = engine.decode([0.1, -0.2])[1][0] + np.linspace(-0.1, 0.1, 7)
    _, z1 = engine.encode(names, q)
    _, z2 = engine.encode(names[::-1], q[::-1])
    assert np.allclose(z1, z2)


def endpoint(z):
    return [], [], list(z)


def test_graph_and_nn_geodesics(engine):
    z = engine.served.model.latents
    res = engine.graph_geodesic(endpoint(z[0]), endpoint(z[-1]))
    assert np.allclose(res.latent[0], z[0]) and np.allclose(res.latent[-1], z[-1])
    assert res.positions.shape == (len(res.latent), 7) and (np.diff(res.times) > 0).all()
    refined = engine.nn_geodesic(endpoint(z[0]), endpoint(z[-1]))   # every field default
    assert refined.length <= res.length * (1 + 1e-9)
    assert refined.stats.method == "graph+polyline"
    nn = engine.nn_geodesic(endpoint(z[0]), endpoint(z[-1]), mode="finite-difference",
                            max_iterations=50)
    assert nn.length <= res.length * (1 + 1e-9)
    assert nn.stats.method == "graph+nn"


@pytest.mark.parametrize("start,fragment", [
    (([], [], [np.nan, 0.0]), "NaN"),
    (([], [], [0.0]), "multiple"),
    (([], [], []), "neither"),
    ((["a"], [0.0], [0.0, 0.0]), "both"),
    ((["bogus"] * 7, [0.0] * 7, []), "repeat"),
    (([], [], [50.0, 50.0]), "far outside"),
])
def test_bad_endpoints(engine, start, fragment):
    z = engine.served.model.latents
    with pytest.raises(RequestError, match=fragment):
        engine.graph_geodesic(start, endpoint(z[0]))


def test_start_equals_goal_and_bad_nn_settings(engine):
    z = engine.served.model.latents
    with pytest.raises(RequestError, match="same point"):
        engine.graph_geodesic(endpoint(z[0]), endpoint(z[0]))
    for kwargs, fragment in [(dict(max_iterations=-1), "max_iterations"),
                             (dict(max_iterations=10 ** 7), "max_iterations"),
                             (dict(mode="x"), "mode"), (dict(init="x"), "init")]:
        with pytest.raises(RequestError, match=fragment):
            engine.nn_geodesic(endpoint(z[0]), endpoint(z[1]), **kwargs)


def test_requests_in_flight_keep_their_model(engine):
    z = engine.served.model.latents
    before = engine.served
    results, errors = [], []

    def query():
        try:
            for _ in range(10):
                results.append(engine.graph_geodesic(endpoint(z[0]), endpoint(z[-1])).length)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=query) for _ in range(4)]
    for t in threads:
        t.start()
    engine.reload()
    for t in threads:
        t.join()
    assert not errors and len(set(np.round(results, 12))) == 1
    assert engine.served is not before


def test_magnification_is_the_served_metrics_volume(engine):
    """sqrt(det J^T J) of the served (data-aware) decoder, by an independent Jacobian."""
    import torch
    points = [[0.0, 0.0], [0.1, 0.2]]
    values, logs = engine.magnification([c for p in points for c in p])
    decoder = engine.served.graph.decoder
    for p, value in zip(points, values):
        z = torch.tensor(p, dtype=torch.float32)
        J = torch.autograd.functional.jacobian(lambda v: decoder(v[None])[0], z).double()
        assert value == pytest.approx(float(torch.det(J.T @ J).sqrt()), rel=1e-3)
    assert np.allclose(np.log(values), logs)


def configuration(names, q):
    return list(names), list(q), []


@pytest.fixture(scope="module")
def poses(arm):
    return arm.data[::97][:8]


def test_trajectories_start_and_end_exactly_at_requested_configurations(engine, poses):
    names = engine.served.joint_names
    for qa, qb in zip(poses[:-1], poses[1:]):
        for plan in (engine.graph_geodesic, engine.nn_geodesic):
            res = plan(configuration(names, qa), configuration(names, qb))
            assert np.abs(res.positions[0] - qa).max() <= 1e-9
            assert np.abs(res.positions[-1] - qb).max() <= 1e-9
            # The residual the model leaves is reported, not hidden.
            recon = run_model(engine.served, "decode", res.latent[[0, -1]])
            # (float32 decodings differ by ~1e-7 between batch sizes)
            assert res.stats.start_offset == pytest.approx(np.abs(recon[0] - qa).max(),
                                                              abs=1e-5)
            assert res.stats.goal_offset == pytest.approx(np.abs(recon[1] - qb).max(),
                                                             abs=1e-5)


def test_geodesic_lengths_many_to_many(engine, poses):
    names = engine.served.joint_names
    starts = [configuration(names, q) for q in poses[:2]]
    z = engine.served.model.latents
    goals = [configuration(names, poses[2]), endpoint(z[5]), configuration(names, poses[0])]
    lengths = engine.geodesic_lengths(starts, goals)
    assert lengths.shape == (2, 3) and np.isfinite(lengths).all()
    assert lengths[0, 2] == pytest.approx(0.0, abs=1e-5)        # a start that is a goal
    assert np.allclose(engine.geodesic_lengths(goals, starts), lengths.T)
    for i, j in ((0, 0), (1, 1)):   # the node path's length bounds the served geodesic's
        served = engine.graph_geodesic(starts[i], goals[j]).length
        # (edges are measured with n_samples points, served paths at the finer measure
        # resolution, which sees a little more of the metric)
        assert served <= lengths[i, j] * 1.05 and lengths[i, j] < 2 * served
    with pytest.raises(RequestError, match="at least one"):
        engine.geodesic_lengths(starts, [])
    with pytest.raises(RequestError, match="goal 1.*NaN"):
        engine.geodesic_lengths(starts, [goals[0], endpoint([np.nan, 0.0])])


def test_trajectories_are_dense_and_within_limits(engine, poses):
    names, cfg = engine.served.joint_names, engine.settings
    res = engine.graph_geodesic(configuration(names, poses[0]), configuration(names, poses[3]))
    steps = np.abs(np.diff(res.positions, axis=0))
    assert steps.max() <= cfg.max_joint_step + 1e-12
    assert res.stats.max_joint_step == pytest.approx(steps.max())
    dt = np.diff(res.time_ns) / 1e9
    assert (dt > 0).all() and res.time_ns.dtype == np.int64
    assert (steps / dt[:, None]).max() <= cfg.max_joint_velocity
    assert np.abs(res.velocities).max() <= cfg.max_joint_velocity
    assert np.abs(res.accelerations).max() <= cfg.max_joint_acceleration
    assert len(res.latent) == len(res.positions)


def test_refused_configurations(engine, poses):
    names = engine.served.joint_names
    goal = configuration(names, poses[1])
    with pytest.raises(RequestError, match="far outside the training data"):
        engine.graph_geodesic(configuration(names, [1000.0] * 7), goal)
    strict = Engine(engine.served.model.directory, Settings(
        device="cpu", max_endpoint_offset=1e-4), log=lambda m: 0)
    with pytest.raises(RequestError, match="max_endpoint_offset.*demonstrations near"):
        strict.graph_geodesic(configuration(names, poses[0]), goal)
    limited = Engine(engine.served.model.directory, Settings(
        device="cpu", joint_limits={names[0]: {"min_position": -0.01, "max_position": 0.01}},
        max_endpoint_offset=0), log=lambda m: 0)   # moved poses the model does not reproduce
    bad = poses[0].copy()
    bad[0] = 0.5
    with pytest.raises(RequestError, match="joint %s = 0.5 rad is outside its limits" % names[0]):
        limited.graph_geodesic(configuration(names, bad), goal)
    ok = poses[0].copy()
    ok[0] = 0.0
    ok_goal = poses[1].copy()
    ok_goal[0] = 0.005
    res = limited.graph_geodesic(configuration(names, ok), configuration(names, ok_goal))
    assert np.abs(res.positions[:, 0]).max() <= 0.01      # interior points clipped


def test_joint_name_mistakes_name_the_field_and_the_joint(engine, poses):
    names = list(engine.served.joint_names)
    start = configuration(names, poses[0])
    cases = [((names[:-1] + ["gripper"], list(poses[1]), []),
              r"goal: unknown joint names \['gripper'\]"),
             ((names[:-1] + [names[0]], list(poses[1]), []),
              r"goal: joint names repeat: \['%s'\]; name each joint once" % names[0]),
             ((names, list(poses[1][:-1]), []), "goal: 6 positions for 7 joint names")]
    for goal, message in cases:
        with pytest.raises(RequestError, match=message):
            engine.graph_geodesic(start, goal)


def test_auto_endpoint_offset_refuses_poses_the_model_cannot_reproduce(engine, poses):
    p99 = engine.served.model.meta["report"]["held_out"]["pose_error_p99"]
    assert engine.served.endpoint_limit == pytest.approx(max(0.05, 1.5 * p99))
    names = engine.served.joint_names
    engine.graph_geodesic(configuration(names, poses[0]), configuration(names, poses[1]))
    off = poses[0].copy()   # a pose off the recorded motions: its stillest joint moved
    off[int(np.argmin(engine.served.model.x_std.numpy()))] += 1.5 * engine.served.endpoint_limit
    with pytest.raises(RequestError, match="start: the model reconstructs .* above "
                                           "max_endpoint_offset"):
        engine.graph_geodesic(configuration(names, off), configuration(names, poses[1]))


def test_auto_endpoint_offset_of_older_and_malformed_reports():
    """An older model's report has the RMSE alone (5 x it); a figure that is not a
    number, or no report at all, switches the auto limit off."""
    from types import SimpleNamespace

    from latent_geodesics.serving.engine import endpoint_limit_of
    held = lambda doc: SimpleNamespace(meta={"report": {"held_out": doc}})  # noqa: E731
    assert endpoint_limit_of(held({"rmse": 0.02}), -1)[0] == pytest.approx(0.1)
    assert endpoint_limit_of(held({"rmse": 0.001}), -1)[0] == 0.05   # the floor
    assert endpoint_limit_of(held({"rmse": 0.02, "pose_error_p99": 0.2}), -1)[0] == \
        pytest.approx(0.3)
    for model in (held({"rmse": "0.02"}), held({"rmse": float("nan")}),
                  SimpleNamespace(meta={})):
        assert endpoint_limit_of(model, -1) == (0.0, "off (auto, but the model has no "
                                                     "held-out error)")


def test_nn_goal_with_every_field_default(engine, poses):
    names = engine.served.joint_names
    res = engine.nn_geodesic(configuration(names, poses[0]), configuration(names, poses[2]),
                             mode="", init="", max_iterations=0)
    assert res.stats.method == "graph+polyline"
    assert res.length <= res.straight_line_length + 1e-12


def test_yaml_defaults_are_the_settings_defaults():
    import dataclasses

    import yaml
    path = os.path.join(os.path.dirname(__file__), "..", "config", "geodesic_server.yaml")
    with open(path) as f:
        params = yaml.safe_load(f)
    for field in dataclasses.fields(Settings):
        default = field.default_factory() if field.default is dataclasses.MISSING \
            else field.default
        assert params[field.name] == default, field.name


@pytest.mark.parametrize("call,args,fragment", [
    ("decode", ([1e300, -1e300],), "float32"),
    ("decode", ([50.0, 50.0],), "far outside the data"),
    ("magnification", ([1e6, 1e6],), "far outside the data"),
    ("magnification", ([1e39, 0.0],), "float32"),
    ("decode", ([0.0] * 2 * 11,), "more than max_points 10"),
    ("magnification", ([0.0] * 2 * 11,), "more than max_points 10"),
])
def test_hostile_point_requests_are_refused(engine, call, args, fragment):
    capped = Engine(engine.served.model.directory, Settings(device="cpu", max_points=10),
                    log=lambda m: 0)
    with pytest.raises(RequestError, match=fragment):
        getattr(capped, call)(*args)


def test_hostile_encode_requests_are_refused(engine):
    names = list(engine.served.joint_names)
    with pytest.raises(RequestError, match="beyond float32"):
        engine.encode(names, [1e300] * 7)
    with pytest.raises(RequestError, match="configuration 0: joint panda_joint1 = 1000 rad "
                                           "is far outside the training data"):
        engine.encode(names, [1000.0] * 7)
    with pytest.raises(RequestError, match="more than max_points"):
        Engine(engine.served.model.directory, Settings(device="cpu", max_points=2),
               log=lambda m: 0).encode(names, [0.0] * 21)


@pytest.mark.parametrize("change,fragment", [
    (dict(max_joint_velocity=-1), "max_joint_velocity must be a positive number"),
    (dict(k=0), "k must be an integer >= 1"),
    (dict(default_mode="newton"), "default_mode must be one of"),
    (dict(joint_limits=[1, 2]), "joint_limits must be a dictionary"),
    (dict(max_joint_step=float("nan")), "max_joint_step"),
    (dict(max_duration=0.0), "max_duration must be a positive number"),
    (dict(max_endpoints=0), "max_endpoints must be an integer >= 1"),
])
def test_bad_settings_are_refused_at_start(engine, change, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Engine(engine.served.model.directory, Settings(device="cpu", **change),
               log=lambda m: 0)


def test_tampered_graph_cache_is_rebuilt_with_a_warning(engine, tmp_path):
    directory = str(tmp_path / "model")
    shutil.copytree(engine.served.model.directory, directory)
    cache = os.path.join(directory, os.path.basename(cache_path(engine.served.model, 10, 10)))
    with np.load(cache) as f:
        arrays = {key: f[key].copy() for key in f.files}
    arrays["weights"] = -arrays["weights"]
    np.savez(cache, **arrays)
    warnings = []
    tampered = Engine(directory, Settings(device="cpu"), log=lambda m: 0, warn=warnings.append)
    assert tampered.served.info["graph_source"] == "built"
    assert any("not finite and positive" in w for w in warnings)
    z = tampered.served.model.latents
    assert tampered.graph_geodesic(endpoint(z[0]), endpoint(z[-1])).length > 0


def test_geodesic_lengths_caps_starts_times_goals_and_computes_in_blocks(engine, poses,
                                                                          monkeypatch):
    import latent_geodesics.graph.latent_graph as graph_module
    names = engine.served.joint_names
    starts = [configuration(names, q) for q in poses[:4]]
    goals = [configuration(names, q) for q in poses[4:8]]
    whole = engine.geodesic_lengths(starts, goals)
    monkeypatch.setattr(graph_module, "DISTANCE_BLOCK", 1)    # one source a block
    assert np.allclose(engine.geodesic_lengths(starts, goals), whole)
    capped = Engine(engine.served.model.directory, Settings(device="cpu", max_lengths=15),
                    log=lambda m: 0)
    with pytest.raises(RequestError, match="4 starts x 4 goals = 16 lengths, more than "
                                           "max_lengths 15"):
        capped.geodesic_lengths(starts, goals)
    few = Engine(engine.served.model.directory, Settings(device="cpu", max_endpoints=7),
                 log=lambda m: 0)
    assert few.geodesic_lengths(starts[:3], goals).shape == (3, 4)
    with pytest.raises(RequestError, match="4 starts . 4 goals = 8 endpoints, more than "
                                           "max_endpoints 7 per request: split it"):
        few.geodesic_lengths(starts, goals)


def test_scaling_factors_slow_the_timing_like_moveit(engine, poses):
    names = engine.served.joint_names
    start, goal = configuration(names, poses[0]), configuration(names, poses[3])
    full = engine.graph_geodesic(start, goal)
    half = engine.graph_geodesic(start, goal, scaling=(0.5, 0.25))
    assert np.array_equal(half.positions, full.positions)         # the same path
    assert half.stats.duration >= 1.9 * full.stats.duration
    limit = engine.served.limits.velocity
    assert (np.abs(half.velocities) <= 0.5 * limit * (1 + 1e-6)).all()
    assert engine.nn_geodesic(start, goal, scaling=(0.5, 0.0)).stats.duration > \
        engine.nn_geodesic(start, goal).stats.duration
    for bad in ((1.5, 0.0), (0.0, -0.2), (np.nan, 0.0)):
        with pytest.raises(RequestError, match="scaling_factor must be in"):
            engine.graph_geodesic(start, goal, scaling=bad)
    # A factor of 1e-9 once timed a six-year motion, 1e-300 an internal error.
    for bad, name in (((1e-9, 0.0), "max_velocity"), ((0.0, 1e-300), "max_acceleration")):
        with pytest.raises(RequestError, match=r"%s_scaling_factor must be in \[0.001, 1\] "
                                               r"\(0 = 1\), not .*: give 0 for full speed"
                                               % name):
            engine.nn_geodesic(start, goal, scaling=bad)
    assert scaling_factors(1e-3, 0.0) == (1e-3, 1.0)
    # At the floor this motion would take about 20 minutes: max_duration refuses it.
    with pytest.raises(RequestError, match="more than the 600 s allowed .max_duration."):
        engine.graph_geodesic(start, goal, scaling=(1e-3, 1e-3))


def test_motions_longer_than_max_duration_are_refused(engine, poses):
    names = engine.served.joint_names
    start, goal = configuration(names, poses[0]), configuration(names, poses[3])
    duration = engine.graph_geodesic(start, goal).stats.duration
    short = Engine(engine.served.model.directory,
                   Settings(device="cpu", max_duration=0.5 * duration), log=lambda m: 0)
    with pytest.raises(RequestError, match="the path cannot be timed: the motion would take "
                                           ".* s, more than the .* s allowed .max_duration.: "
                                           "raise the joint limits or the scaling factors"):
        short.graph_geodesic(start, goal)


def test_the_summary_fills_every_geodesic_stats_field(engine):
    """GeodesicSummary and msg/GeodesicStats.msg name the same fields, in order."""
    import dataclasses
    import re

    from latent_geodesics.serving.results import GeodesicSummary
    msg = os.path.join(os.path.dirname(__file__), "..", "msg", "GeodesicStats.msg")
    with open(msg) as f:
        fields = [m.group(1) for line in f
                  if (m := re.match(r"\s*[\w/]+(?:\[\])?\s+(\w+)\s*(?:#.*)?$", line))]
    assert [f.name for f in dataclasses.fields(GeodesicSummary)] == fields
    z = engine.served.model.latents
    summary = engine.graph_geodesic(([], [], z[0]), ([], [], z[-1])).summary()
    assert summary.method == "graph" and summary.nodes_expanded > 0
    assert summary.num_points > 2 and summary.duration > 0 and summary.data_spacing > 0


@pytest.mark.parametrize("description", ["", "  \n", None])
def test_a_reload_without_robot_description_keeps_the_urdf_limits(engine, description):
    """An empty or deleted robot_description (the learner reloads every round) keeps
    the last URDF's position limits in force, and the reload says why."""
    root = os.path.join(os.path.dirname(__file__), "..")
    with open(os.path.join(root, "urdf", "panda.urdf")) as f:
        urdf = f.read()
    warnings = []
    served = Engine(engine.served.model.directory, Settings(device="cpu"), log=lambda m: 0,
                    warn=warnings.append, robot_description=urdf)
    before = served.served.limits
    assert before.source == "urdf" and np.isfinite(before.lower).all()
    served.robot_description = description
    for _ in range(2):   # and at every reload after
        after = served.reload().limits
        assert np.array_equal(after.lower, before.lower)
        assert np.array_equal(after.upper, before.upper)
        assert np.array_equal(after.velocity, before.velocity)
        assert after.source.startswith("urdf (robot_description is empty; keeping the "
                                       "joint limits of the last URDF)")
    assert len(warnings) == 2 and "keeping the joint limits of the last URDF" in warnings[0]
    fresh = Engine(engine.served.model.directory, Settings(device="cpu"), log=lambda m: 0,
                   robot_description=description)   # no URDF was ever in force
    assert fresh.served.limits.source == "parameters"
    assert not np.isfinite(fresh.served.limits.lower).any()


def test_smoothing_serves_a_straight_segment_unmeasured(engine, monkeypatch):
    """A two-point path has no corners to round: smoothed() serves it with its own
    length and embeds nothing; a path with corners is measured rounded, and kept only
    where the rounding measures no longer."""
    from latent_geodesics.geometry.curves import Geodesic
    from latent_geodesics.geometry.metric import LatentMetric
    from latent_geodesics.serving.planning import smoothed
    served = engine.served
    z = served.model.latents
    embedded = []
    original = LatentMetric.embed
    monkeypatch.setattr(LatentMetric, "embed",
                        lambda self, points: embedded.append(len(points)) or original(self,
                                                                                      points))
    straight = Geodesic(np.stack([z[0], z[-1]]), 1.25, "graph")
    points, length = smoothed(served, straight)
    assert points is straight.points and length == 1.25 and not embedded
    path = served.graph.shortest_path(z[0], z[-1])
    points, length = smoothed(served, path)
    assert embedded and length <= path.length
    assert length == pytest.approx(served.graph.measure(points), rel=1e-6)
