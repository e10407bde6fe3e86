"""Clearance between the robot's body (spheres) and the scene's objects (exact signed
distances to boxes, spheres, cylinders and sphere covers), batched over
configurations, and the check of a whole joint-space motion, the stretch between
two rows included.

Why the check of a motion holds: along a straight joint-space step, no body point
moves farther than b = body.motion_bound(step), so the clearance (a distance minus a
radius, 1-Lipschitz in the body's points) changes by at most b. Between two samples
of clearance c0 and c1, a step of bound b, every intermediate configuration
therefore has clearance ≥ min over u of max(c0 − u·b, c1 − (1−u)·b) = (c0 + c1 − b)/2.
The motion is clear when that bound is ≥ the margin between every two neighbouring
samples. Samples are placed adaptively (conservative advancement): the rows first,
then a step whose bound fails is cut into pieces short enough for the bound to hold
at the clearances its ends have (c0 + c1 − 2·margin), and again, until every step
either holds or is no longer than `resolution` (there it fails). Far from the
objects a few samples certify a long motion; near them it is sampled as finely as
the resolution asks.
"""
from dataclasses import dataclass

import numpy as np
import torch

# Configurations per batch: the (configurations x spheres x shapes) temporaries stay
# in cache-sized blocks, which is faster than one large batch on few cores.
CHUNK = 10000
# Points x union-spheres per block of a sphere-cover distance (memory bound).
SPHERE_BLOCK = 1 << 22
# cdist's matrix-product shortcut loses ~0.3 mm to cancellation in float32
EXACT = "donot_use_mm_for_euclid_dist"
MAX_PIECES = 64   # a failing step is cut into at most this many pieces per round
REFINEMENTS = 40  # rounds of cutting (each at least halves a failing step)


@dataclass(frozen=True)
class Contact:
    """Where the body is nearest an object: clearance (m; negative: penetration
    depth), the link and the object, index (the row of the configurations) and
    fraction (where between that row and the next; 0 at the row itself)."""
    clearance: float
    link: str
    object: str
    index: int
    fraction: float = 0.0


class Primitives:
    """A scene's shapes in the root frame as tensors. Box, sphere and cylinder shapes
    are grouped by kind: for each the rotation R and translation t taking a root-frame
    point into the shape's frame (local = R p + t), its dimensions and its object's
    index; 'spheres' shapes keep their spheres in the root frame. Every shape also
    has a bounding ball and a ball inside it, for the broad phase of clearance()."""

    def __init__(self, scene, dtype=torch.float32, device="cpu"):
        self.object_ids = scene.object_ids
        groups = {"box": [], "sphere": [], "cylinder": []}
        self.unions, balls, kinds, slots, owners = [], [], [], [], []
        for number, object_id in enumerate(self.object_ids):
            obj = scene.objects[object_id]
            for shape in obj.shapes:
                pose = obj.pose @ shape.pose
                kinds.append(shape.kind)
                owners.append(number)
                if shape.kind == "spheres":
                    spheres = np.asarray(shape.dimensions)
                    centres = spheres[:, :3] @ pose[:3, :3].T + pose[:3, 3]
                    slots.append(len(self.unions))
                    self.unions.append((centres, spheres[:, 3]))
                    balls.append(union_balls(centres, spheres[:, 3]))
                else:
                    slots.append(len(groups[shape.kind]))
                    groups[shape.kind].append((np.linalg.inv(pose), shape.dimensions))
                    balls.append(primitive_balls(shape.kind, shape.dimensions, pose))

        def tensor(values, kind=dtype):
            return torch.as_tensor(np.array(values), dtype=kind, device=device)

        self.groups = {}
        for kind, members in groups.items():
            if members:
                inverse = np.stack([m[0] for m in members])
                owner = [o for k, o in zip(kinds, owners) if k == kind]
                self.groups[kind] = (tensor(inverse[:, :3, :3]), tensor(inverse[:, :3, 3]),
                                     tensor([m[1] for m in members]), tensor(owner, torch.long))
        self.unions = [(tensor(c), tensor(r)) for c, r in self.unions]
        self.kinds, self.slots = np.array(kinds), tensor(slots, torch.long)
        self.owners = np.array(owners, dtype=np.int64)
        balls = np.array(balls, dtype=float).reshape(-1, 5)
        self.ball_centres, self.outer, self.inner = (tensor(balls[:, :3]), tensor(balls[:, 3]),
                                                     tensor(balls[:, 4]))

    def distances(self, points):
        """(N, n_objects) signed distance of each point to each object."""
        out = torch.full((len(points), len(self.object_ids)), float("inf"),
                         dtype=points.dtype, device=points.device)
        for kind, (rotation, translation, dimensions, owner) in self.groups.items():
            local = torch.einsum("kij,nj->nki", rotation, points) + translation
            distance = SIGNED_DISTANCE[kind](local, dimensions)
            # Not in place: amin's gradient needs the output it gave, which a second
            # kind of shape (or a union below) would otherwise overwrite.
            out = out.scatter_reduce(1, owner.expand(len(points), -1), distance, "amin")
        for union, owner in zip(self.unions, self.owners[self.kinds == "spheres"]):
            column = torch.minimum(out[:, owner], union_distance(points, *union))
            out = out.index_copy(1, torch.tensor([owner], device=out.device), column[:, None])
        return out

    def pair_distances(self, points, shapes):
        """Signed distance of points[i] (M, 3) to the shape numbered shapes[i]."""
        out = torch.empty(len(points), dtype=points.dtype, device=points.device)
        kinds = self.kinds[shapes.cpu().numpy()]
        for kind, (rotation, translation, dimensions, _) in self.groups.items():
            mine = torch.as_tensor(kinds == kind, device=points.device)
            slot = self.slots[shapes[mine]]
            local = torch.einsum("mij,mj->mi", rotation[slot], points[mine]) + translation[slot]
            out[mine] = SIGNED_DISTANCE[kind](local, dimensions[slot])
        for number in np.flatnonzero(self.kinds == "spheres"):
            mine = shapes == int(number)
            out[mine] = union_distance(points[mine], *self.unions[int(self.slots[number])])
        return out


def union_distance(points, centres, radii):
    """Signed distance to a union of spheres: the smallest over them (in blocks)."""
    step = max(1, SPHERE_BLOCK // max(1, len(centres)))
    return torch.cat([(torch.cdist(points[i:i + step], centres, compute_mode=EXACT)
                       - radii).amin(dim=1)
                      for i in range(0, len(points), step)] or [points[:0, 0]])


def primitive_balls(kind, dimensions, pose):
    """[centre x, y, z, radius of a ball holding the shape, radius of one inside it]."""
    values = np.asarray(dimensions, float)
    if kind == "box":
        outer, inner = np.linalg.norm(values / 2), values.min() / 2
    elif kind == "sphere":
        outer = inner = values[0]
    else:   # cylinder (height, radius)
        outer, inner = np.hypot(values[0] / 2, values[1]), min(values[0] / 2, values[1])
    return list(pose[:3, 3]) + [outer, inner]


def union_balls(centres, radii):
    """The same for a union of spheres, around its largest sphere."""
    largest = int(np.argmax(radii))
    outer = np.max(np.linalg.norm(centres - centres[largest], axis=1) + radii)
    return list(centres[largest]) + [outer, radii[largest]]


def _box(local, size):
    """Exact signed distance to boxes of full sizes `size` (K, 3) centred at 0."""
    q = local.abs() - size / 2
    outside = q.clamp(min=0).norm(dim=-1)
    return outside + q.amax(dim=-1).clamp(max=0)


def _sphere(local, radius):
    return local.norm(dim=-1) - radius[:, 0]


def _cylinder(local, dimensions):
    """Exact signed distance to z-axis cylinders (height, radius) centred at 0."""
    radial = local[..., :2].norm(dim=-1) - dimensions[:, 1]
    axial = local[..., 2].abs() - dimensions[:, 0] / 2
    q = torch.stack([radial, axial], dim=-1)
    return q.clamp(min=0).norm(dim=-1) + q.amax(dim=-1).clamp(max=0)


SIGNED_DISTANCE = {"box": _box, "sphere": _sphere, "cylinder": _cylinder}


def signed_distances(scene, points):
    """(N, n_objects) exact signed distance from points (N, 3) in the root frame to
    each object of the scene (columns in scene.object_ids order; an object is the
    union of its shapes, a 'spheres' shape the union of its spheres)."""
    points = torch.as_tensor(points)
    if not points.is_floating_point():
        points = points.double()
    return Primitives(scene, points.dtype, points.device).distances(points.reshape(-1, 3))


class CollisionChecker:
    """The body against one scene (scenes are immutable: a changed scene gets a new
    checker). padding: the clearance the planner keeps (callers pass it as check_path's
    margin for edges; served motions need margin ≥ 0)."""

    def __init__(self, body, scene, padding=0.02):
        if not (np.isfinite(padding) and padding >= 0):
            raise ValueError("collision padding must be a number of metres >= 0")
        self.body, self.scene, self.padding = body, scene, float(padding)
        self.primitives = Primitives(scene, body.dtype, body.device)
        self.object_ids = self.primitives.object_ids
        self._radii = body.radii.reshape(-1, 1)

    def clearance_tensor(self, q):
        """(B, S, n_objects) signed distance of each sphere to each object minus its
        radius, differentiable w.r.t. q (for a metric's ambient term)."""
        centres = self.body.sphere_centres(q)
        batch, spheres = centres.shape[:2]
        distance = self.primitives.distances(centres.reshape(-1, 3))
        return distance.reshape(batch, spheres, -1) - self._radii

    def clearance_within(self, q, reach):
        """(B,) the smallest clearance of each configuration where it is below reach,
        else reach; differentiable w.r.t. q. Only the sphere-shape pairs whose
        bounding balls may come within reach are measured (what a barrier that
        vanishes beyond reach needs: the same values, far fewer distances)."""
        centres = self.body.sphere_centres(q)
        batch, count = centres.shape[:2]
        points = centres.reshape(-1, 3)
        radius = self.body.radii.repeat(batch)
        shapes = self.primitives
        with torch.no_grad():
            lower = torch.cdist(points, shapes.ball_centres, compute_mode=EXACT) \
                - radius[:, None] - shapes.outer
            point, shape = torch.nonzero(lower < reach, as_tuple=True)
        out = torch.full((batch,), float(reach), dtype=points.dtype, device=points.device)
        if len(point):
            exact = shapes.pair_distances(points[point], shape) - radius[point]
            out = out.scatter_reduce(0, point // count, exact.clamp(max=reach), "amin")
        return out

    def clearance(self, q):
        """(clearance (B,) float64, link index (B,) into body.link_names, object index
        (B,) into object_ids): the smallest over spheres and objects; +inf and -1
        where the scene is empty."""
        q = torch.as_tensor(q, dtype=self.body.dtype, device=self.body.device)
        q = q.reshape(1, -1) if q.ndim == 1 else q
        batch = len(q)
        if batch == 0 or len(self.primitives.owners) == 0 or len(self._radii) == 0:
            return np.full(batch, np.inf), np.full(batch, -1), np.full(batch, -1)
        with torch.no_grad():
            found = [self._smallest(q[start:start + CHUNK]) for start in range(0, batch, CHUNK)]
        values = torch.cat([v for v, _ in found]).double().cpu().numpy()
        where = torch.cat([w for _, w in found]).cpu().numpy()
        spheres, shapes = np.divmod(where, len(self.primitives.owners))
        return values, self.body.sphere_links[spheres], self.primitives.owners[shapes]

    def _smallest(self, q):
        """(B,) smallest clearance and where (sphere * n_shapes + shape), exact. Broad
        phase: a shape's outer ball bounds every sphere's clearance to it from below,
        its inner ball from above, so only pairs whose lower bound is under the
        configuration's best upper bound are measured exactly."""
        shapes = self.primitives
        centres = self.body.sphere_centres(q)
        batch, count = centres.shape[:2]
        points = centres.reshape(-1, 3)
        radius = self.body.radii.repeat(batch).reshape(-1, 1)
        gap = torch.cdist(points, shapes.ball_centres, compute_mode=EXACT) - radius
        upper = (gap - shapes.inner).reshape(batch, -1).amin(dim=1, keepdim=True)
        lower = (gap - shapes.outer).reshape(batch, -1)
        row, flat = torch.nonzero(lower <= upper + 1e-6, as_tuple=True)
        sphere, shape = flat // len(shapes.owners), flat % len(shapes.owners)
        point = row * count + sphere
        exact = shapes.pair_distances(points[point], shape) - radius[point, 0]
        full = torch.full_like(lower, float("inf"))
        full[row, flat] = exact
        return full.min(dim=1)

    def _contact(self, clearance, link, obj, index, fraction=0.0):
        if link < 0:
            return Contact(float(clearance), "", "", int(index), float(fraction))
        return Contact(float(clearance), self.body.link_names[link], self.object_ids[obj],
                       int(index), float(fraction))

    def nearest(self, q):
        """The Contact of the row of q (B, J) or (J,) nearest an object."""
        clearance, link, obj = self.clearance(q)
        row = int(np.argmin(clearance))
        return self._contact(clearance[row], link[row], obj[row], row)

    def smallest(self, positions):
        """The smallest clearance over the rows of positions (T, J), as a Contact."""
        return self.nearest(positions)

    def check_path(self, positions, margin=0.0, resolution=0.005):
        """The first place along the joint-space polyline through the rows of
        positions (T, J), the straight stretch between rows included, where the body
        may come within `margin` (scalar or per row (T,)) of an object, or None where
        it provably does not (module docstring). The Contact's clearance is the
        sampled one, or the bound between two samples where only that fails."""
        positions = np.asarray(positions, dtype=float)
        positions = positions.reshape(1, -1) if positions.ndim == 1 else positions
        margin = np.broadcast_to(np.asarray(margin, dtype=float), len(positions))
        if not (np.isfinite(resolution) and resolution > 0):
            raise ValueError("check_path resolution must be a positive number of metres")
        if not self.object_ids:
            return None
        samples, segment, fraction, step, (clearance, link, obj) = self._samples(
            positions, margin, resolution)
        needed = np.interp(segment + fraction, np.arange(len(positions)), margin)
        # the guaranteed clearance between consecutive samples, against the larger margin
        between = np.minimum((clearance[:-1] + clearance[1:] - step) / 2,
                             np.minimum(clearance[:-1], clearance[1:]))
        failed_sample = clearance < needed
        failed_between = between < np.maximum(needed[:-1], needed[1:])
        # sample i comes before the stretch i -> i+1
        order = np.flatnonzero(np.stack([failed_sample[:-1], failed_between], 1).ravel())
        if failed_sample[-1]:
            order = np.append(order, 2 * (len(samples) - 1))
        if not len(order):
            return None
        first, is_between = divmod(int(order[0]), 2)
        worst, value = first, clearance[first]
        if is_between:
            worst = first if clearance[first] <= clearance[first + 1] else first + 1
            value = between[first]
        return self._contact(value, link[worst], obj[worst], segment[worst], fraction[worst])

    def violations(self, positions, margin=0.0, resolution=0.005):
        """(T - 1,) bool: which segments row i -> i + 1 of the polyline may come within
        margin of an object (check_path's test, every segment at once): what a lazy
        search drops."""
        positions = np.asarray(positions, dtype=float)
        if not self.object_ids or len(positions) < 2:
            return np.zeros(max(0, len(positions) - 1), dtype=bool)
        _, segment, _, step, (clearance, _, _) = self._samples(positions, margin, resolution)
        between = np.minimum((clearance[:-1] + clearance[1:] - step) / 2,
                             np.minimum(clearance[:-1], clearance[1:]))
        bad = np.zeros(len(positions) - 1, dtype=bool)
        bad[segment[:-1][between < margin]] = True
        return bad

    def _samples(self, positions, margin, resolution):
        """Configurations along the polyline, placed adaptively (module docstring):
        (samples, their segment row, fraction within it, the motion bound of the step
        after each sample, (clearance, link, object) of each sample). margin: a
        scalar or one per row (interpolated between rows)."""
        rows = np.arange(len(positions), dtype=float)
        if len(positions) == 1:
            return positions, np.zeros(1, int), np.zeros(1), np.zeros(0), \
                self.clearance(positions)
        delta = np.diff(positions, axis=0)
        bound = self.body.motion_bound(delta)
        margin = np.broadcast_to(np.asarray(margin, dtype=float), len(positions))
        t, found = rows, self.clearance(positions)
        for _ in range(REFINEMENTS):   # a step still failing after them fails (sound)
            segment = np.minimum(t[:-1].astype(int), len(delta) - 1)
            step = bound[segment] * np.diff(t)
            c = found[0]
            need = np.maximum(np.interp(t[:-1], rows, margin), np.interp(t[1:], rows, margin))
            between = np.minimum((c[:-1] + c[1:] - step) / 2, np.minimum(c[:-1], c[1:]))
            cut = np.flatnonzero((between < need) & (step > resolution))
            if not len(cut):
                break
            # pieces short enough for the bound to hold at the ends' clearances
            room = np.maximum(c[cut] + c[cut + 1] - 2 * need[cut], resolution)
            pieces = np.clip(np.ceil(step[cut] / room), 2, MAX_PIECES).astype(int)
            owner = np.repeat(np.arange(len(cut)), pieces - 1)
            k = np.arange(len(owner)) - np.repeat(np.cumsum(pieces - 1) - (pieces - 1), pieces - 1)
            new_t = t[cut][owner] + (k + 1) / pieces[owner] * (t[cut + 1] - t[cut])[owner]
            new_seg = np.minimum(new_t.astype(int), len(delta) - 1)
            new_q = positions[new_seg] + (new_t - new_seg)[:, None] * delta[new_seg]
            more = self.clearance(new_q)
            order = np.argsort(np.r_[t, new_t], kind="stable")
            t = np.r_[t, new_t][order]
            found = tuple(np.r_[a, b][order] for a, b in zip(found, more))
        segment = t.astype(int)
        fraction = t - segment
        samples = positions[np.minimum(segment, len(delta) - 1)] + \
            fraction[:, None] * delta[np.minimum(segment, len(delta) - 1)]
        samples[-1] = positions[-1]
        return samples, segment, fraction, bound[np.minimum(segment[:-1], len(delta) - 1)] \
            * np.diff(t), found
