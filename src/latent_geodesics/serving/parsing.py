"""Requests in the wire format, checked and converted: joint names matched to the
model's order, flat lists shaped and range-checked, endpoints given as joint
positions or latent points, and configurations refused beyond the joint limits,
far from the training data or reconstructed too poorly. Every refusal is a
RequestError that says what was wrong."""
import numpy as np
import torch

from latent_geodesics.errors import GraphError, RequestError

FLOAT32_MAX = float(np.finfo(np.float32).max)
MIN_SCALING = 1e-3   # MoveIt's scaling factors below: a motion stretched over hours or days


def finite_array(values, what):
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise RequestError("%s is empty" % what)
    if not np.isfinite(arr).all():
        raise RequestError("%s holds NaN or inf" % what)
    return arr


def rows(values, width, what, max_rows=None):
    """A flat row-major list -> (N, width), refusing a length that does not fit,
    values beyond float32 (the model computes in it) and more than max_rows rows."""
    if max_rows and len(values) > max_rows * width:   # before converting a huge list
        raise RequestError("%s has %d points, more than max_points %d per request"
                           % (what, len(values) // width, max_rows))
    arr = finite_array(values, what)
    if arr.ndim != 1 or arr.size % width:
        raise RequestError("%s has %d values, not a multiple of the dimension %d"
                           % (what, arr.size, width))
    if np.abs(arr).max() > FLOAT32_MAX:
        raise RequestError("%s holds values beyond float32's range" % what)
    return arr.reshape(-1, width)


def finite_result(values, what):
    """No answer carries NaN or inf with success."""
    if not np.isfinite(values).all():
        raise RequestError("%s came out non-finite: the input lies where the model is "
                           "numerically meaningless" % what)
    return values


def scaling_factors(velocity, acceleration):
    """MoveIt's max_velocity/acceleration_scaling_factor: each in [MIN_SCALING, 1],
    0 = 1."""
    out = []
    for name, value in (("max_velocity_scaling_factor", velocity),
                        ("max_acceleration_scaling_factor", acceleration)):
        value = float(value) or 1.0
        if not (np.isfinite(value) and MIN_SCALING <= value <= 1):
            raise RequestError("%s must be in [%g, 1] (0 = 1), not %r: give 0 for full "
                               "speed or a factor of at least %g" % (
                                   name, MIN_SCALING, value, MIN_SCALING))
        out.append(value)
    return tuple(out)


def configurations(served, joint_names, positions, max_rows=None, what=""):
    """Named positions (any joint order) -> (N, Nx) in the model's order. what: the
    request's field these came from (start, goal), named in every refusal."""
    field = what + ": " if what else ""
    names = list(joint_names) or list(served.joint_names)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise RequestError("%sjoint names repeat: %s; name each joint once"
                           % (field, repeated))
    unknown = [n for n in names if n not in served.joint_names]
    if unknown:
        raise RequestError("%sunknown joint names %s; the model's joints are %s"
                           % (field, unknown, list(served.joint_names)))
    missing = [n for n in served.joint_names if n not in names]
    if missing:
        raise RequestError("%sjoint names missing: %s; give a position for each of the "
                           "model's joints" % (field, missing))
    if len(positions) % len(names):
        named = "%d joint names" % len(names) if joint_names else \
            "the model's %d joints (no joint_names given)" % len(names)
        raise RequestError("%s%d positions for %s: give one position per joint (per "
                           "configuration)" % (field, len(positions), named))
    q = rows(positions, len(names), field + "positions", max_rows)
    order = {n: i for i, n in enumerate(names)}
    return q[:, [order[n] for n in served.joint_names]]


def latent_points(served, values, what="latent", max_rows=None):
    return rows(values, served.model.z_dim, what, max_rows)


def near_data(served, z, what):
    """Refuse latent points far outside the data (where the decoder extrapolates)."""
    graph = served.graph
    distance, _ = graph.tree.query(z)
    far = np.flatnonzero(distance > graph.outside_factor * graph.reach)
    if len(far):
        raise RequestError("%s point %d is far outside the data: nearest node at latent "
                           "distance %.3g, more than %g x the graph's neighbour reach %.3g"
                           % (what, far[0], distance[far[0]], graph.outside_factor,
                              graph.reach))
    return z


@torch.no_grad()
def run_model(served, method, values):
    """served.model.<method> on a float64 array, on the model's device, back to numpy."""
    out = getattr(served.model, method)(torch.as_tensor(values, dtype=torch.float32,
                                                        device=served.model.device))
    return out.cpu().double().numpy()


def endpoint(served, settings, joint_names, positions, latent, what):
    """(latent point, requested configuration or None) from either form."""
    has_joints, has_latent = len(positions) > 0 or len(joint_names) > 0, len(latent) > 0
    if has_joints == has_latent:
        raise RequestError("%s: give either joint positions or a latent point, not %s"
                           % (what, "both" if has_joints else "neither"))
    q = None
    if has_latent:
        z = latent_points(served, latent, what + " latent")
    else:
        q = configurations(served, joint_names, positions, what=what)
        if len(q) != 1:
            raise RequestError("%s: one configuration expected, got %d" % (what, len(q)))
        check_configurations(served, settings, q, lambda r: what)
        q = q[0]
        z = run_model(served, "encode", q[None])
    if len(z) != 1:
        raise RequestError("%s: one latent point expected, got %d" % (what, len(z)))
    try:
        return served.graph.check_inside(z[0], what), q
    except GraphError as e:
        raise RequestError(str(e)) from None


def check_configurations(served, settings, q, what):
    """Refuse configurations (N, D) beyond the joint limits or far from the data,
    in one vectorised pass; the message names the first offending row and joint.
    what(row) says which configuration that is."""
    limits = served.limits
    bad = np.argwhere(limits.beyond(q, settings.position_tolerance))
    if len(bad):
        r, i = bad[0]
        raise RequestError("%s: joint %s = %.4g rad is outside its limits [%.4g, %.4g] "
                           "(%s)" % (what(r), limits.names[i], q[r, i], limits.lower[i],
                                     limits.upper[i], limits.source))
    # Generous: the training data's mean +- (6 standard deviations + 1 rad).
    mean = served.model.x_mean.double().cpu().numpy()
    spread = 6 * served.model.x_std.double().cpu().numpy() + 1.0
    far = np.argwhere(np.abs(q - mean) > spread)
    if len(far):
        r, i = far[0]
        raise RequestError("%s: joint %s = %.4g rad is far outside the training data "
                           "(mean %.4g, accepted %.4g to %.4g)" % (
                               what(r), served.joint_names[i], q[r, i], mean[i],
                               mean[i] - spread[i], mean[i] + spread[i]))


def endpoints(served, settings, start, goal):
    zs, qs = endpoint(served, settings, *start, "start")
    zg, qg = endpoint(served, settings, *goal, "goal")
    if np.allclose(zs, zg, rtol=0, atol=1e-9) and (
            qs is None or qg is None or np.array_equal(qs, qg)):
        raise RequestError("start and goal are the same point: nothing to plan")
    check_offsets(served, (zs, qs, "start"), (zg, qg, "goal"))
    return (zs, qs), (zg, qg)


def check_offsets(served, *ends):
    """Refuse configurations the model reconstructs worse than max_endpoint_offset."""
    limit = served.endpoint_limit
    if limit <= 0:
        return
    for z, q, what in ends:
        if q is None:
            continue
        offset = float(np.abs(run_model(served, "decode", z[None])[0] - q).max())
        if offset > limit:
            raise RequestError(
                "%s: the model reconstructs this configuration %.3f rad off in its worst "
                "joint, above max_endpoint_offset %.3f rad; demonstrations near this pose "
                "or a larger latent dimension help" % (what, offset, limit))
