"""A latent path planned into a timed joint trajectory (the engine's last step)."""
import numpy as np

from latent_geodesics.errors import LimitError, RequestError
from latent_geodesics.geometry.curves import smooth, split, subdivide
from latent_geodesics.serving.fidelity import chord
from latent_geodesics.serving.parsing import run_model
from latent_geodesics.serving.results import DataFidelity, GeodesicSummary, PathResult
from latent_geodesics.serving.trajectory import (
    carry_residuals,
    select_waypoints,
    spline_peaks,
    time_parametrize,
)

DENSIFY_ROUNDS = 6   # resamplings until no joint moves more than half a max_joint_step


def dense_positions(served, settings, latent, q_start, q_goal):
    """Latent samples along a path and their joint positions, residuals carried,
    sampled until no joint moves more than half a max_joint_step between them."""
    target = 0.5 * settings.max_joint_step
    z, _ = subdivide(latent, served.graph.step)
    for _ in range(DENSIFY_ROUNDS):
        q, off_s, off_g = carry_residuals(run_model(served, "decode", z), q_start, q_goal)
        steps = np.abs(np.diff(q, axis=0)).max(axis=1)
        if steps.max() <= target:
            break
        z, _ = split(z, np.ceil(steps / target))
    return z, q, off_s, off_g


def smoothed(served, path, world=None):
    """The path with its corners rounded (a B-spline), unless that measures longer
    (under the world's metric, where there is one) or comes nearer an object. A
    straight segment has no corners: it is served as it is, not measured again."""
    if len(path.points) <= 2:
        return path.points, path.length
    rounded = smooth(path.points)
    if world is None:
        length = served.graph.measure(rounded)
    else:
        length = world.metric.polyline_length(rounded, served.graph.step)
    if length <= path.length and (world is None or world.polyline_clear(rounded)):
        return rounded, length
    return path.points, path.length


def fidelity(served, settings, timing):
    """How far the timed motion, and the joint straight line between its ends,
    stray from the recorded poses; refused beyond max_data_distance."""
    served_motion = served.recorded.distance(timing.positions)
    line = served.recorded.distance(chord(timing.positions[0], timing.positions[-1]))
    limit = settings.max_data_distance
    if limit > 0 and served_motion.largest > limit:
        where = served_motion.where
        raise RequestError(
            "the motion leaves the recorded data by %.3f rad (%.1f data spacings), more "
            "than max_data_distance %.3f, at %.0f %% of the way (t = %.2f s): no "
            "demonstration covers that region; demonstrate there (the active learner "
            "asks for it) or allow more" % (
                served_motion.largest, served_motion.largest_spacings, limit, 100 * where,
                where * timing.duration))
    return DataFidelity(data_distance=served_motion.largest,
                        data_distance_mean=served_motion.mean,
                        data_distance_spacings=served_motion.largest_spacings,
                        data_spacing=served.recorded.spacing,
                        chord_data_distance=line.largest, chord_data_distance_mean=line.mean)


def rows_like(z, q, dense):
    """The latent samples z (T, d) of the decoded motion q, matched to the rows of
    dense: a way around an object in joint space (serving/roadmap.py) replaces a
    stretch of q with other rows and no latent points of their own, so the rows kept
    from q keep theirs and the replaced stretch's are stretched over the new rows
    (the latent path shown there is the one it was planned from)."""
    if len(dense) == len(q):
        return z
    size = min(len(q), len(dense))
    same = np.all(q[:size] == dense[:size], axis=1)
    head = int(np.argmin(same)) if not same.all() else size
    same = np.all(q[::-1][:size] == dense[::-1][:size], axis=1)
    tail = min(int(np.argmin(same)) if not same.all() else size, size - head)
    rows = len(dense) - head - tail
    t = np.linspace(head, len(z) - 1 - tail, rows)
    middle = np.stack([np.interp(t, np.arange(len(z)), column) for column in z.T], 1)
    return np.vstack([z[:head], middle, z[len(z) - tail:]])


def timed(served, settings, q, z, scaling, world, keep_ends):
    """(Timing, clipped points, the world's Contact or None, bent, the latent points of
    the timed points): the dense motion q (its latent points z) thinned to waypoints,
    clipped to the position limits (keep_ends: requested ends stay exact) and timed by
    TOPP-RA within the (scaled) limits. With a world the dense motion keeps the
    request's margin first (bent around objects where it does not) and the timed one
    is checked as a controller draws it; where the curve between its points still
    comes too near, the dense motion is bent once more with room to spare and timed
    again, else the request is refused (world.check_motion)."""
    bent = ""
    for attempt in range(2):
        dense = q
        if world is not None:
            dense, how = world.keep_clear(q, extra=attempt > 0)
            bent = how or bent
        picks = select_waypoints(dense, settings.max_joint_step)
        points, clipped = served.limits.clip(dense[picks], *keep_ends)
        try:
            timing = time_parametrize(points, served.limits.scaled(*scaling),
                                      max_duration=settings.max_duration)
        except LimitError as e:
            raise RequestError("the path cannot be timed: %s" % e) from None
        kept = rows_like(z, q, dense)[picks][timing.kept]
        if world is None:
            return timing, clipped, None, bent, kept
        try:
            contact = world.world.check_motion(timing, spline_peaks(timing)[1])
            return timing, clipped, contact, bent, kept
        except RequestError:
            if attempt:
                raise


def plan(served, settings, path, q_start=None, q_goal=None, scaling=(1.0, 1.0), world=None):
    """A latent path planned into what a controller can follow: decoded densely with
    the model's residuals carried to exact ends, thinned to waypoints, clipped to the
    position limits, timed by TOPP-RA within the (scaled) limits, and measured
    against the recorded data; with a world, checked over its whole motion against
    the scene (world.check_motion: a colliding motion is refused)."""
    points, length = smoothed(served, path, world)
    z, q, off_s, off_g = dense_positions(served, settings, points, q_start, q_goal)
    timing, clipped, contact, bent, z = timed(served, settings, q, z, scaling, world,
                                             (q_start is not None, q_goal is not None))
    method = path.method + ("+" + bent if bent else "")
    straight = path.stats.straight_length   # measured by the path's own search
    if not np.isfinite(straight):   # a search that did not measure it: the same measure
        ends = np.stack([path.points[0], path.points[-1]])
        straight = served.graph.measure(ends) if world is None else \
            world.metric.polyline_length(ends, served.graph.step)
    summary = GeodesicSummary.of(
        method, path.stats, len(z), (off_s, off_g), clipped,
        np.abs(np.diff(timing.positions, axis=0)).max(), timing.duration,
        fidelity(served, settings, timing), contact)
    return PathResult(z, timing.positions, timing.time_ns, timing.velocities,
                      timing.accelerations, list(served.joint_names), length,
                      straight, summary, path.stats)
