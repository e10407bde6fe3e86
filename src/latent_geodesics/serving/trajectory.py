"""From a decoded latent path to a trajectory a controller can execute.

    carry_residuals     exact endpoints: the model's reconstruction error at each
                        end, blended along the path by normalised arc length
    select_waypoints    dense enough that no joint moves more than a step
    JointLimits         per-joint position/velocity/acceleration limits from a
                        URDF (urdf_parser_py), MoveIt-style overrides, or scalars
    time_parametrize    time-optimal timing by TOPP-RA, served as one cubic spline
                        in time (positions, velocities and accelerations agree), checked
                        between points as a controller interpolates, after timestamps
                        are rounded to whole nanoseconds (ROS time)
"""
import functools
import logging
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline

from latent_geodesics.errors import LimitError, is_number
from latent_geodesics.world.urdf import URDFError, parse_urdf

NS = 1_000_000_000
GRID_REFINE = 4        # TOPP-RA gridpoints per interval between points
QUINTIC_SAMPLES = 16   # samples per segment when checking the quintic's peaks
MAX_SECONDS = 2 ** 31 - 1   # a ROS Duration holds int32 seconds


def arc_fraction(positions):
    """Normalised Euclidean arc length along joint-space points: 0 ... 1."""
    seg = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    arc = np.r_[0.0, np.cumsum(seg)]
    return arc / arc[-1] if arc[-1] > 0 else np.linspace(0.0, 1.0, len(positions))


def carry_residuals(decoded, start=None, goal=None):
    """q(s) = f(z(s)) + (1 - s) r_start + s r_goal, s the normalised decoded arc length.

    start/goal: the requested configurations (None: that end is a latent point
    and keeps its decoding). The first/last rows equal them exactly; the
    correction is smooth and never larger than the larger residual.
    Returns (positions, start residual, goal residual) as largest-joint radians.
    """
    decoded = np.asarray(decoded, dtype=np.float64)
    r_start = np.zeros(decoded.shape[1]) if start is None else np.asarray(start) - decoded[0]
    r_goal = np.zeros(decoded.shape[1]) if goal is None else np.asarray(goal) - decoded[-1]
    s = arc_fraction(decoded)[:, None]
    q = decoded + (1 - s) * r_start + s * r_goal
    if start is not None:
        q[0] = start
    if goal is not None:
        q[-1] = goal
    return q, float(np.abs(r_start).max()), float(np.abs(r_goal).max())


def select_waypoints(positions, max_step):
    """Indices of a subsequence in which no joint moves more than max_step.

    Greedy along the cumulative largest-joint step, which bounds the largest
    joint change between any two points; consecutive input steps above
    max_step are kept as they are (the caller samples densely enough).
    """
    cheb = np.r_[0.0, np.cumsum(np.abs(np.diff(positions, axis=0)).max(axis=1))]
    picks, i, last = [0], 0, len(positions) - 1
    while i < last:
        j = int(np.searchsorted(cheb, cheb[i] + max_step, side="right")) - 1
        i = min(max(j, i + 1), last)
        picks.append(i)
    return np.array(picks)


def _flag(entry, joint, key, default):
    """A joint_limits flag: a real boolean ("false" as a string is not one)."""
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise LimitError("joint_limits/%s/%s must be true or false, not %r" % (joint, key, value))
    return value


def _number(entry, joint, key):
    """A joint_limits number, named with its joint and field when it is not one."""
    value = entry.get(key)
    if not is_number(value):
        raise LimitError("joint_limits/%s/%s must be a finite number, not %r" % (joint, key, value))
    return float(value)


@dataclass
class JointLimits:
    """Per-joint limits in the model's joint order; inf = none, 0 acceleration = none."""
    names: list
    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    source: str = "parameters"

    @classmethod
    def uniform(cls, names, max_velocity, max_acceleration=0.0):
        n = len(names)
        return cls(list(names), np.full(n, -np.inf), np.full(n, np.inf),
                   np.full(n, float(max_velocity)), np.full(n, float(max_acceleration or 0.0)))

    def with_urdf(self, urdf_xml):
        """Limits from a URDF's joints (position and velocity; URDF has no acceleration)."""
        try:
            robot = parse_urdf(urdf_xml)
        except URDFError as e:
            raise LimitError(str(e)) from None
        joints = {j.name: j for j in robot.joints}
        missing = [n for n in self.names if n not in joints]
        if missing:   # the model's names only: the document's own text is never echoed
            raise LimitError("robot_description has no joints %s (it defines %d other joints): "
                             "give the URDF of the robot this model was trained on"
                             % (missing, len(joints)))
        out = self.copy("urdf")
        for i, name in enumerate(self.names):
            joint, limit = joints[name], joints[name].limit
            if limit is None:
                continue
            bounded = joint.type != "continuous" and (limit.lower is not None
                                                      or limit.upper is not None)
            if bounded:   # a limit that is there is never dropped: it is refused
                if limit.lower is None or limit.upper is None or \
                        not float(limit.lower) < float(limit.upper):
                    raise LimitError("robot_description joint %s: position limits lower=%r "
                                     "upper=%r are not a range (lower < upper)"
                                     % (name, limit.lower, limit.upper))
                out.lower[i], out.upper[i] = float(limit.lower), float(limit.upper)
            if limit.velocity is not None:
                velocity = float(limit.velocity)
                if not (np.isfinite(velocity) and velocity > 0):
                    raise LimitError("robot_description joint %s: velocity limit %r must be "
                                     "positive" % (name, limit.velocity))
                out.velocity[i] = velocity
        return out

    def with_overrides(self, overrides, label="overrides", strict=True):
        """MoveIt joint_limits.yaml entries: {joint: {has_velocity_limits, max_velocity, ...}}.

        strict: an unknown joint is an error (the server's own ~joint_limits); else it
        is skipped (MoveIt's file for the whole robot, grippers included)."""
        if not strict:
            overrides = {k: v for k, v in (overrides or {}).items() if k in self.names}
        out = self.copy(self.source + "+" + label if overrides else self.source)
        for name, entry in (overrides or {}).items():
            if name not in self.names:
                raise LimitError("joint_limits names unknown joint '%s'; the joints are %s"
                                 % (name, self.names))
            if not isinstance(entry, dict):
                raise LimitError("joint_limits/%s must be a dictionary" % name)
            i = self.names.index(name)
            if _flag(entry, name, "has_position_limits", "min_position" in entry):
                out.lower[i] = _number(entry, name, "min_position")
                out.upper[i] = _number(entry, name, "max_position")
            if _flag(entry, name, "has_velocity_limits", "max_velocity" in entry):
                out.velocity[i] = _number(entry, name, "max_velocity")
            if _flag(entry, name, "has_acceleration_limits", "max_acceleration" in entry):
                out.acceleration[i] = _number(entry, name, "max_acceleration")
        out.check()
        return out

    def scaled(self, velocity=1.0, acceleration=1.0):
        """These limits times MoveIt's scaling factors, each in (0, 1]."""
        out = self.copy(self.source)
        out.velocity = out.velocity * velocity
        out.acceleration = out.acceleration * acceleration
        return out

    def copy(self, source):
        return JointLimits(list(self.names), self.lower.copy(), self.upper.copy(),
                           self.velocity.copy(), self.acceleration.copy(), source)

    def check(self):
        for i, name in enumerate(self.names):
            if not (np.isfinite(self.velocity[i]) and self.velocity[i] > 0):
                raise LimitError("joint %s: velocity limit must be positive, not %r"
                                 % (name, self.velocity[i]))
            if not (np.isfinite(self.acceleration[i]) and self.acceleration[i] >= 0):
                raise LimitError("joint %s: acceleration limit must be >= 0 (0 = none), not %r"
                                 % (name, self.acceleration[i]))
            if not self.lower[i] < self.upper[i]:
                raise LimitError("joint %s: position limits [%g, %g] are empty"
                                 % (name, self.lower[i], self.upper[i]))
        return self

    def beyond(self, q, tolerance):
        """Mask (..., D) of positions beyond the limits + tolerance."""
        return (q < self.lower - tolerance) | (q > self.upper + tolerance)

    def outside(self, q, tolerance):
        """[(joint, value, lower, upper)] of a configuration beyond the limits + tolerance."""
        return [(self.names[i], q[i], self.lower[i], self.upper[i])
                for i in np.flatnonzero(self.beyond(q, tolerance))]

    def clip(self, positions, keep_first=False, keep_last=False):
        """Positions clipped into the limits; (clipped, number of points changed)."""
        clipped = np.clip(positions, self.lower, self.upper)
        if keep_first:
            clipped[0] = positions[0]
        if keep_last:
            clipped[-1] = positions[-1]
        changed = int((clipped != positions).any(axis=1).sum())
        return clipped, changed


@dataclass
class Timing:
    """A timed trajectory: points, integer nanoseconds from start, derivatives."""
    positions: np.ndarray      # (m, D) rad
    time_ns: np.ndarray        # (m,) int64, strictly increasing, 0 first
    velocities: np.ndarray     # (m, D) rad/s
    accelerations: np.ndarray  # (m, D) rad/s^2
    kept: np.ndarray = None    # indices of these points in the positions given

    @property
    def times(self):
        return self.time_ns / NS

    @property
    def duration(self):
        return float(self.time_ns[-1]) / NS


def spline_peaks(timing, samples=QUINTIC_SAMPLES):
    """Per-joint peak |velocity| and |acceleration| (D,) of what a
    joint_trajectory_controller draws between the points: the cubic through
    positions and velocities (exact: its velocity peaks where its acceleration
    vanishes), and the quintic through positions, velocities and accelerations
    (sampled, samples per segment)."""
    t = timing.time_ns / NS
    c3, c2, c1 = hermite_coefficients(t, timing.positions, timing.velocities)
    h = np.diff(t)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = -c2 / (3 * c3)
        inside = np.isfinite(vertex) & (vertex > 0) & (vertex < h)
        v_inside = np.where(inside, c1 - c2 ** 2 / (3 * c3), 0.0)
    v_peak = np.maximum(np.abs(timing.velocities).max(0), np.abs(v_inside).max(0))
    a_peak = np.maximum(np.abs(2 * c2).max(0), np.abs(6 * c3 * h + 2 * c2).max(0))
    v_quintic, a_quintic = quintic_peaks(h[:, 0], timing.positions, timing.velocities,
                                         timing.accelerations, samples)
    return np.maximum(v_peak, v_quintic), np.maximum(a_peak, a_quintic)


def hermite_coefficients(t, q, v):
    """The cubic Hermite pieces through positions q and velocities v (m, D) at times t:
    (c3, c2, c1), each (m - 1, D), in local time, as scipy's CubicHermiteSpline
    computes them (its formulas; building the spline object costs more than the peaks
    it serves)."""
    h = np.diff(t)[:, None]
    slope = np.diff(q, axis=0) / h
    bend = (v[:-1] + v[1:] - 2 * slope) / h
    return bend / h, (slope - v[:-1]) / h - bend, v[:-1]


def quintic_peaks(h, q, v, a, samples=QUINTIC_SAMPLES):
    """Per-joint peak |velocity| and |acceleration| (D,) of the quintics through the
    points' positions, velocities and accelerations (h: the pieces' durations),
    sampled `samples` times a piece. The quintic Hermite coefficients in closed form,
    all pieces at once: scipy's BPoly.from_derivatives builds the same polynomials
    piece by piece in Python, several milliseconds a trajectory."""
    h = h[:, None]
    dq, v0, v1, a0, a1 = q[1:] - q[:-1], v[:-1], v[1:], a[:-1], a[1:]
    c3 = (20 * dq - (8 * v1 + 12 * v0) * h - (3 * a0 - a1) * h ** 2) / (2 * h ** 3)
    c4 = (-30 * dq + (14 * v1 + 16 * v0) * h + (3 * a0 - 2 * a1) * h ** 2) / (2 * h ** 4)
    c5 = (12 * dq - 6 * (v1 + v0) * h - (a0 - a1) * h ** 2) / (2 * h ** 5)
    s = (np.linspace(0.0, 1.0, samples)[None, :] * h)[..., None]   # (m - 1, samples, 1)
    c3, c4, c5 = c3[:, None], c4[:, None], c5[:, None]
    velocity = v0[:, None] + s * (a0[:, None] + s * (3 * c3 + s * (4 * c4 + s * 5 * c5)))
    acceleration = a0[:, None] + s * (6 * c3 + s * (12 * c4 + s * 20 * c5))
    return np.abs(velocity).max((0, 1)), np.abs(acceleration).max((0, 1))


def peak_ratios(timing, limits):
    """Largest |velocity| / limit and |acceleration| / limit over joints, between
    the points as a controller interpolates them (spline_peaks)."""
    v_peak, a_peak = spline_peaks(timing)
    limited = limits.acceleration > 0
    a_ratio = (a_peak[limited] / limits.acceleration[limited]).max() if limited.any() else 0.0
    return float((v_peak / limits.velocity).max()), float(a_ratio)


def time_parametrize(positions, limits, margin=1e-6, max_duration=np.inf):
    """Time-optimal timing of a dense joint path under per-joint limits (TOPP-RA).

    The path is TOPP-RA's cubic spline through the points (path parameter: the
    normalised arc length), timed on a grid GRID_REFINE times finer than the
    points, at rest at both ends. The points are then served as samples of one
    C2 cubic spline in time through them (as TOPP-RA's ParametrizeSpline fits),
    so positions, velocities and accelerations agree and the cubic or quintic a
    controller draws between two points is that spline's piece. Times are whole
    nanoseconds; the whole trajectory is slowed uniformly until the spline's
    peaks between points are within the limits (the spline rounds off TOPP-RA's
    bang-bang accelerations and overshoots them a little).
    Repeated points are dropped (timing.positions holds the points kept); a
    motion longer than max_duration seconds is refused.
    """
    q = np.asarray(positions, dtype=np.float64)
    if q.ndim != 2 or len(q) < 2:
        raise LimitError("need at least two positions (m, D)")
    keep = np.r_[True, np.abs(np.diff(q, axis=0)).max(axis=1) > 1e-12]
    if not keep[-1]:   # the last point stands for its run of repeats
        keep[np.flatnonzero(keep)[-1]] = False
        keep[[0, -1]] = True
    q_used = q[keep]
    if np.abs(q_used[-1] - q_used[0]).max() <= 1e-12 and len(q_used) <= 2:
        raise LimitError("the path does not move")
    if len(q_used) == 2:
        return _rest_to_rest(q_used, limits, np.flatnonzero(keep), max_duration)
    seconds = _toppra_times(q_used, limits)
    return _in_nanoseconds(q_used, seconds, limits, margin, np.flatnonzero(keep),
                           max_duration)


def _toppra_times(q, limits):
    """TOPP-RA's time-optimal times (seconds) at the points of the spline through q."""
    toppra, algo = _toppra()
    ss = arc_fraction(q)
    # Gridpoints between the points too: TOPP-RA meets the limits at gridpoints only.
    grid = np.r_[(ss[:-1, None] + np.diff(ss)[:, None]
                  * np.arange(GRID_REFINE) / GRID_REFINE).ravel(), ss[-1]]
    path = toppra.SplineInterpolator(ss, q)
    cons = _constraints(limits.velocity.tobytes(), limits.acceleration.tobytes())
    instance = algo.TOPPRA(list(cons), path, gridpoints=grid, parametrizer="ParametrizeConstAccel")
    instance.compute_parameterization(0.0, 0.0)
    data = instance.problem_data
    if data.return_code != algo.ParameterizationReturnCode.Ok or data.sd_vec is None:
        raise LimitError("TOPP-RA could not time the path: %s" % data.return_code)
    sd = np.maximum(np.asarray(data.sd_vec, dtype=np.float64).ravel(), 0.0)
    if not np.isfinite(sd).all():
        raise LimitError("TOPP-RA returned non-finite path velocities")
    # Constant path acceleration between gridpoints (ParametrizeConstAccel's times).
    dt = 2 * np.diff(grid) / np.maximum(sd[:-1] + sd[1:], 1e-12)
    return np.r_[0.0, np.cumsum(dt)][::GRID_REFINE]


@functools.lru_cache(maxsize=1)
def _toppra():
    """(toppra, toppra.algorithm), imported on the first timing with toppra's info
    messages silenced once: setting a logger's level clears every logger's cache, a
    fraction of a millisecond a request."""
    import toppra
    import toppra.algorithm as algo
    logging.getLogger("toppra").setLevel(logging.WARNING)
    return toppra, algo


@functools.lru_cache(maxsize=32)
def _constraints(velocity, acceleration):
    """TOPP-RA's joint constraints of these limits (float64 bytes), made once: each
    one formats its limits into a description when made (a millisecond a request);
    they hold only the limits, not the path."""
    import toppra.constraint as constraint
    velocity, acceleration = np.frombuffer(velocity), np.frombuffer(acceleration)
    cons = [constraint.JointVelocityConstraint(np.stack([-velocity, velocity], 1))]
    if (acceleration > 0).all():
        accel = np.stack([-acceleration, acceleration], 1)
        cons.append(constraint.JointAccelerationConstraint(accel))
    return tuple(cons)


def served_spline(positions, time_ns, kept=None):
    """The points as samples of the C2 cubic spline in time through them, at rest
    at both ends: a controller's cubic (positions, velocities) and quintic (and
    accelerations) between two points are both that spline's piece."""
    t = time_ns / NS
    spline = CubicSpline(t, positions, bc_type="clamped", axis=0)
    velocities, accelerations = spline(t, 1), spline(t, 2)
    velocities[[0, -1]] = 0.0
    return Timing(positions, time_ns, velocities, accelerations, kept)


def check_duration(seconds, max_duration):
    """Refuse a motion longer than max_duration (or than a ROS Duration holds),
    before its times become nanoseconds."""
    allowed = min(max_duration, MAX_SECONDS)
    if not seconds <= allowed:
        raise LimitError("the motion would take %.4g s, more than the %g s allowed "
                         "(max_duration): raise the joint limits or the scaling factors, "
                         "or max_duration" % (seconds, allowed))


def _in_nanoseconds(q, seconds, limits, margin, kept, max_duration):
    """The served spline on times rounded up to whole nanoseconds, the whole
    trajectory slowed uniformly until its peaks between points are within the
    limits."""
    for _ in range(50):
        check_duration(seconds[-1], max_duration)
        ns = np.ceil(seconds * NS - 1e-3).astype(np.int64)   # rounding up only slows
        timing = served_spline(q, np.r_[0, np.cumsum(np.maximum(np.diff(ns), 1))], kept)
        v_ratio, a_ratio = peak_ratios(timing, limits)
        if v_ratio <= 1.0 and a_ratio <= 1.0:
            check_duration(timing.duration, max_duration)   # rounded up: may be longer
            return timing
        # Slowing down by s divides velocities by s and accelerations by s^2.
        seconds = timing.time_ns / NS * max(v_ratio, np.sqrt(a_ratio)) * (1 + margin)
    raise LimitError("could not meet the joint limits after rounding")


def _rest_to_rest(q, limits, kept, max_duration):
    """Two points: the cubic a controller interpolates between rests,
    q(t) = q0 + d (3 tau^2 - 2 tau^3), peaks 1.5 d / T and 6 d / T^2."""
    d = np.abs(q[1] - q[0])
    duration = (1.5 * d / limits.velocity).max()
    limited = limits.acceleration > 0
    if limited.any():
        duration = max(duration, np.sqrt(6 * d[limited] / limits.acceleration[limited]).max())
    check_duration(duration, max_duration)
    time_ns = np.array([0, max(1, int(np.ceil(duration * NS)))], dtype=np.int64)
    a = 6 * (q[1] - q[0]) / (time_ns[1] / NS) ** 2
    return Timing(q, time_ns, np.zeros_like(q), np.stack([a, -a]), kept)


def position_at(time_ns, positions, t):
    """Joint positions of a timed trajectory at t seconds (linear between points)."""
    seconds = np.asarray(time_ns, dtype=np.float64) / NS
    positions = np.asarray(positions, dtype=np.float64)
    return np.array([np.interp(t, seconds, positions[:, d]) for d in range(positions.shape[1])])
