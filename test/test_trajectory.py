"""From a decoded path to an executable trajectory: residuals, density, limits, timing."""
import numpy as np
import pytest
from scipy.interpolate import BPoly, CubicHermiteSpline, CubicSpline

from latent_geodesics.serving.trajectory import (
    NS,
    JointLimits,
    LimitError,
    carry_residuals,
    hermite_coefficients,
    peak_ratios,
    quintic_peaks,
    select_waypoints,
    time_parametrize,
)

NAMES = ["a", "b", "c"]
URDF = """<robot name="r"><link name="l0"/><link name="l1"/><link name="l2"/><link name="l3"/>
<joint name="a" type="revolute"><parent link="l0"/><child link="l1"/>
  <limit lower="-1.0" upper="1.0" velocity="0.5" effort="1"/></joint>
<joint name="b" type="continuous"><parent link="l1"/><child link="l2"/>
  <limit velocity="2.0" effort="1"/></joint>
<joint name="c" type="revolute"><parent link="l2"/><child link="l3"/>
  <limit lower="-2.0" upper="0.5" velocity="1.5" effort="1"/></joint></robot>"""


def path(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 0.03, (n, 3)), axis=0)


def test_residuals_give_exact_smooth_endpoints():
    decoded = np.linspace([0.0, 0.0, 0.0], [1.0, 2.0, 3.0], 50)
    start, goal = decoded[0] + [0.1, -0.2, 0.0], decoded[-1] + [0.0, 0.3, 0.0]
    q, off_start, off_goal = carry_residuals(decoded, start, goal)
    assert np.array_equal(q[0], start) and np.array_equal(q[-1], goal)
    assert off_start == pytest.approx(0.2) and off_goal == pytest.approx(0.3)
    correction = q - decoded                       # linear in arc length: no jump
    assert np.abs(np.diff(correction, axis=0)).max() <= 0.5 / 49 + 1e-12   # |r_g - r_s| = 0.5
    same, zero_s, zero_g = carry_residuals(decoded)
    assert np.array_equal(same, decoded) and zero_s == zero_g == 0.0


def test_waypoints_bound_every_joint_step():
    dense = np.cumsum(np.random.default_rng(1).uniform(0, 0.004, (2000, 3)), axis=0)
    picks = select_waypoints(dense, 0.05)
    assert picks[0] == 0 and picks[-1] == len(dense) - 1
    assert np.abs(np.diff(dense[picks], axis=0)).max() <= 0.05
    assert len(picks) < len(dense) / 5


def test_timing_respects_limits_after_rounding_and_rests_at_ends():
    limits = JointLimits.uniform(NAMES, 0.5, 0.3)
    timing = time_parametrize(path(), limits)
    assert timing.time_ns.dtype == np.int64 and timing.time_ns[0] == 0
    assert (np.diff(timing.time_ns) > 0).all()
    v, a = peak_ratios(timing, limits)
    assert v <= 1.0 and a <= 1.0
    assert max(v, a) > 0.95                         # as fast as allowed: time-optimal
    assert np.abs(timing.velocities[[0, -1]]).max() == 0.0
    dt = np.diff(timing.time_ns) / NS                # recomputed from the integers sent
    assert (np.abs(np.diff(timing.positions, axis=0)) / dt[:, None]).max() <= 0.5


def test_per_joint_limits_and_acceleration_make_it_slower():
    q = path()
    fast = time_parametrize(q, JointLimits.uniform(NAMES, 1.0, 0.0))
    slow = time_parametrize(q, JointLimits.uniform(NAMES, 1.0, 0.2))
    assert slow.duration > fast.duration
    per_joint = JointLimits.uniform(NAMES, 1.0, 0.0).with_overrides(
        {"b": {"has_velocity_limits": True, "max_velocity": 0.1}})
    timed = time_parametrize(q, per_joint)
    assert np.abs(timed.velocities[:, 1]).max() <= 0.1
    assert timed.duration > fast.duration


def test_two_points_rest_to_rest():
    limits = JointLimits.uniform(NAMES, 1.0, 2.0)
    timing = time_parametrize(np.array([[0.0, 0.0, 0.0], [0.3, 0.0, -0.1]]), limits)
    seconds = timing.duration
    assert seconds >= 1.5 * 0.3 and 6 * 0.3 / seconds ** 2 <= 2.0 + 1e-9


def test_repeated_points_are_dropped():
    q = np.repeat(path(10), 2, axis=0)
    timing = time_parametrize(q, JointLimits.uniform(NAMES, 1.0, 1.0))
    assert len(timing.positions) == 10 and (np.diff(timing.time_ns) > 0).all()
    assert np.array_equal(q[timing.kept], timing.positions)


def test_limits_from_urdf_and_overrides():
    limits = JointLimits.uniform(NAMES, 1.0, 2.0).with_urdf(URDF)
    assert limits.source == "urdf"
    assert list(limits.velocity) == [0.5, 2.0, 1.5]
    assert (limits.lower[0], limits.upper[0]) == (-1.0, 1.0)
    assert np.isinf(limits.upper[1])                # continuous: no position limits
    assert list(limits.acceleration) == [2.0] * 3   # URDF has none: the scalar stays
    moveit = limits.with_overrides({"c": {"has_acceleration_limits": True,
                                          "max_acceleration": 0.7}})
    assert moveit.acceleration[2] == 0.7 and moveit.velocity[2] == 1.5
    assert moveit.outside(np.array([1.2, 0.0, 0.0]), 0.01)[0][0] == "a"
    assert moveit.outside(np.array([1.005, 0.0, 0.0]), 0.01) == []
    clipped, changed = moveit.clip(np.array([[0.0, 0, 0], [1.5, 0, 0], [0.0, 0, 0.9]]),
                                   keep_first=True)
    assert changed == 2 and clipped[1, 0] == 1.0 and clipped[2, 2] == 0.5


@pytest.mark.parametrize("make,fragment", [
    (lambda lim: lim.with_urdf("<robot name='x'/>"), "no joints"),
    (lambda lim: lim.with_urdf("not xml <"), "not well-formed XML"),
    (lambda lim: lim.with_overrides({"zz": {"max_velocity": 1.0}}), "unknown joint"),
    (lambda lim: lim.with_overrides({"a": {"max_velocity": -1.0}}), "positive"),
    (lambda lim: lim.with_overrides({"a": {"min_position": 1.0, "max_position": 0.0}}), "empty"),
    # Never loosened silently: each refused with the joint and the field named.
    (lambda lim: lim.with_urdf(URDF.replace('lower="-1.0" upper="1.0"',
                                            'lower="1.0" upper="-1.0"')),
     "joint a: position limits lower=1.0 upper=-1.0 are not a range"),
    (lambda lim: lim.with_urdf(URDF.replace('velocity="0.5"', 'velocity="0"')),
     "joint a: velocity limit 0.0 must be positive"),
    (lambda lim: lim.with_overrides({"a": {"has_velocity_limits": "false",
                                           "max_velocity": 9.0}}),
     "joint_limits/a/has_velocity_limits must be true or false, not 'false'"),
    (lambda lim: lim.with_overrides({"b": {"max_velocity": "fast"}}),
     "joint_limits/b/max_velocity must be a finite number, not 'fast'"),
])
def test_bad_limits(make, fragment):
    with pytest.raises(LimitError, match=fragment):
        make(JointLimits.uniform(NAMES, 1.0, 2.0))


def test_bad_paths():
    with pytest.raises(LimitError):
        time_parametrize(np.zeros((1, 3)), JointLimits.uniform(NAMES, 1.0))
    with pytest.raises(LimitError, match="does not move"):
        time_parametrize(np.zeros((5, 3)), JointLimits.uniform(NAMES, 1.0))


def test_moveit_planning_limits_skip_other_joints_and_yield_to_the_servers_own():
    urdf = JointLimits.uniform(NAMES, 1.0, 2.0).with_urdf(URDF)
    planning = {"b": {"has_velocity_limits": True, "max_velocity": 0.4},
                "gripper": {"has_velocity_limits": True, "max_velocity": 0.1}}
    moveit = urdf.with_overrides(planning, "moveit", strict=False)
    assert moveit.velocity[1] == 0.4 and moveit.source == "urdf+moveit"
    own = moveit.with_overrides({"b": {"has_velocity_limits": True, "max_velocity": 0.2}})
    assert own.velocity[1] == 0.2 and own.source == "urdf+moveit+overrides"
    with pytest.raises(LimitError, match="unknown joint 'gripper'"):
        urdf.with_overrides(planning)


def controller_peaks(timing):
    """Per-joint peak |velocity| and |acceleration| (D,) of the two splines a
    joint_trajectory_controller draws between points: the cubic Hermite through
    positions and velocities (no accelerations given) and the quintic through
    positions, velocities and accelerations; both sampled densely per segment."""
    h = (np.diff(timing.time_ns) / NS)[:, None, None]
    tau = np.linspace(0.0, 1.0, 400)[None, :, None]
    q, v, a = timing.positions, timing.velocities, timing.accelerations
    q0, q1, v0, v1, a0, a1 = q[:-1, None], q[1:, None], v[:-1, None], v[1:, None], \
        a[:-1, None], a[1:, None]
    d2 = 3 * (q1 - q0) - (2 * v0 + v1) * h        # cubic: q0 + v0 h tau + d2 tau^2 + d3 tau^3
    d3 = -2 * (q1 - q0) + (v0 + v1) * h
    cubic_v = v0 + (2 * d2 * tau + 3 * d3 * tau ** 2) / h
    cubic_a = (2 * d2 + 6 * d3 * tau) / h ** 2
    b0 = q1 - q0 - v0 * h - a0 * h ** 2 / 2        # quintic: what the quadratic misses at
    b1 = (v1 - v0 - a0 * h) * h                    # the end, solved for tau^3..tau^5
    b2 = (a1 - a0) * h ** 2
    e3, e4, e5 = 10 * b0 - 4 * b1 + b2 / 2, -15 * b0 + 7 * b1 - b2, 6 * b0 - 3 * b1 + b2 / 2
    quintic_v = v0 + a0 * h * tau + (3 * e3 * tau ** 2 + 4 * e4 * tau ** 3
                                     + 5 * e5 * tau ** 4) / h
    quintic_a = a0 + (6 * e3 * tau + 12 * e4 * tau ** 2 + 20 * e5 * tau ** 3) / h ** 2
    return tuple(np.abs(x).max(axis=(0, 1)) for x in (cubic_v, cubic_a, quintic_v, quintic_a))


def assert_within_limits_between_points(timing, limits, accel_tolerance=0.02):
    cubic_v, cubic_a, quintic_v, quintic_a = controller_peaks(timing)
    for velocity in (cubic_v, quintic_v):
        assert (velocity <= limits.velocity * (1 + 1e-6)).all(), velocity / limits.velocity
    limited = limits.acceleration > 0
    for acceleration in (cubic_a, quintic_a):
        ratio = acceleration[limited] / limits.acceleration[limited]
        assert (ratio <= 1 + accel_tolerance).all(), ratio


def hermite_end_accelerations(timing):
    """Accelerations of the cubic Hermite at the start and the end of each segment."""
    h = (np.diff(timing.time_ns) / NS)[:, None]
    q, v = timing.positions, timing.velocities
    d2 = 3 * (q[1:] - q[:-1]) - (2 * v[:-1] + v[1:]) * h
    d3 = -2 * (q[1:] - q[:-1]) + (v[:-1] + v[1:]) * h
    return 2 * d2 / h ** 2, (2 * d2 + 6 * d3) / h ** 2


def arm_paths(arm, count=6):
    """Joint paths like the served ones: two demonstrations joined at a corner,
    dense, thinned to waypoints 0.05 rad apart."""
    for first, second in zip(arm.demos[:count], arm.demos[count:2 * count]):
        joined = np.vstack([first, second[1:] - second[0] + first[-1]])
        dense = CubicSpline(np.arange(len(joined)), joined)(np.linspace(0, len(joined) - 1, 600))
        yield dense[select_waypoints(dense, 0.05)]


PANDA = (np.array([2.175] * 4 + [2.61] * 3), np.array([15, 7.5, 10, 12.5, 15, 20, 20.0]))


@pytest.mark.parametrize("velocity,acceleration", [(1.0, 2.0), (PANDA[0], 0.1 * PANDA[1]),
                                                   (PANDA[0], PANDA[1]), (0.5, 0.0)])
def test_limits_hold_between_points_as_a_controller_interpolates(arm, velocity, acceleration):
    limits = JointLimits.uniform(arm.joint_names, 1.0, 1.0)
    limits.velocity[:], limits.acceleration[:] = velocity, acceleration
    for q in arm_paths(arm):
        timing = time_parametrize(q, limits)
        assert_within_limits_between_points(timing, limits)
        # Consistent: the accelerations stated are those the positions and velocities
        # imply, so the controller's cubic and quintic are one curve.
        starts, ends = hermite_end_accelerations(timing)
        scale = np.abs(timing.accelerations).max()
        assert np.abs(starts - timing.accelerations[:-1]).max() <= 1e-6 * scale
        assert np.abs(ends - timing.accelerations[1:]).max() <= 1e-6 * scale
        assert np.array_equal(timing.positions[[0, -1]], q[[0, -1]])
        assert np.abs(timing.velocities[[0, -1]]).max() == 0.0
        v, a = peak_ratios(timing, limits)
        assert max(v, a) > 0.99                    # and no slower than the limits need


def test_motions_longer_than_max_duration_are_refused():
    limits = JointLimits.uniform(NAMES, 0.5, 0.3)
    for q in (path(), path()[[0, -1]]):                 # TOPP-RA, and rest to rest
        duration = time_parametrize(q, limits).duration
        assert time_parametrize(q, limits, max_duration=duration).duration == duration
        with pytest.raises(LimitError, match=r"the motion would take .* s, more than the "
                                             r".* s allowed \(max_duration\)"):
            time_parametrize(q, limits, max_duration=0.5 * duration)
    # Limits so slow that nanoseconds would overflow int64: refused, never wrapped around.
    with pytest.raises(LimitError, match="max_duration"):
        time_parametrize(path(), JointLimits.uniform(NAMES, 1e-12, 1e-20))


@pytest.mark.parametrize("points", [2, 3, 25])
def test_quintic_peaks_agree_with_scipy(points):
    """The closed-form quintics' sampled peaks are BPoly.from_derivatives' (the
    reference), on random positions, velocities, accelerations and piece lengths."""
    rng = np.random.default_rng(points)
    t = np.r_[0.0, np.cumsum(rng.uniform(0.05, 2.0, points - 1))]
    q, v, a = rng.normal(size=(3, points, 4))
    reference = BPoly.from_derivatives(t, np.stack([q, v, a], 1))
    ts = (t[:-1, None] + np.linspace(0.0, 1.0, 16) * np.diff(t)[:, None]).ravel()
    v_peak, a_peak = quintic_peaks(np.diff(t), q, v, a, samples=16)
    np.testing.assert_allclose(v_peak, np.abs(reference(ts, 1)).max(0), rtol=1e-9)
    np.testing.assert_allclose(a_peak, np.abs(reference(ts, 2)).max(0), rtol=1e-9)


@pytest.mark.parametrize("points", [2, 3, 25])
def test_hermite_coefficients_are_scipys(points):
    """The cubic pieces the limits are checked on are CubicHermiteSpline's, number for
    number, on random positions, velocities and piece lengths."""
    rng = np.random.default_rng(10 + points)
    t = np.r_[0.0, np.cumsum(rng.uniform(0.05, 2.0, points - 1))]
    q, v = rng.normal(size=(2, points, 4))
    reference = CubicHermiteSpline(t, q, v).c
    for ours, theirs in zip(hermite_coefficients(t, q, v), reference[:3]):
        assert np.array_equal(ours, theirs)
