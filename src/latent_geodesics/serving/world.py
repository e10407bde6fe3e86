"""The robot's world as the server plans in it: the body from the URDF, the scene of
objects, and what one scene means for the served model's graph and metric.

`RobotWorld` holds the body and the current scene (swapped in one assignment: a
request in flight finishes on the scene it started with; the next request sees an
update). `PathWorld` is one scene seen through one served model: the metric with the
obstacle barrier, node clearances, the graph's edges known to collide (found lazily,
Bohlin & Kavraki's Lazy PRM, and kept until the scene changes), and the collision
checks of latent segments and timed motions.
"""
import threading
from dataclasses import dataclass

import numpy as np
import torch
from scipy.interpolate import BPoly
from scipy.spatial import cKDTree

from latent_geodesics.errors import RequestError
from latent_geodesics.geometry.metric import split, subdivide
from latent_geodesics.model.uncertainty import under_func_transform
from latent_geodesics.serving.detour import EXTRA as EXTRA_CLEARANCE
from latent_geodesics.serving.detour import bend, bend_every_row
from latent_geodesics.serving.parsing import run_model
from latent_geodesics.serving.roadmap import around
from latent_geodesics.serving.scene_edges import SceneEdges
from latent_geodesics.serving.trajectory import carry_residuals
from latent_geodesics.world.body import RobotBody
from latent_geodesics.world.collision import CollisionChecker
from latent_geodesics.world.scene import Scene
from latent_geodesics.world.urdf import URDFError

# Joint-space spacing of the decoded samples a latent segment is checked at (rad): the
# lazy check is a filter, the timed motion's check (check_motion) is the guarantee.
SEGMENT_CHECK_STEP = 0.02
# The decoded curve of an edge bends away from the chord between its ends a little:
# edges whose chord keeps this much more than the margin are not decoded to be checked.
CHORD_ALLOWANCE = 0.02
MOTION_SUBSTEPS = 4   # samples of the controller's curve per trajectory interval
END_SUBSTEPS = 32     # the same in the first and last interval (ends near an object)


@dataclass(frozen=True)
class WorldSettings:
    padding: float          # m a planned motion keeps from every object
    influence: float        # m from an object where its barrier starts to rise
    cost: float             # the barrier's height at contact, in the metric's units
    resolution: float       # m a body point may move between checked configurations


class KnownClearances:
    """Lower bounds on the clearance of any configuration from configurations whose
    clearance is known (the graph's nodes, checked once per scene): no body point
    moves farther than the body's motion bound between two configurations, so
    clearance(q) >= clearance(q_n) - motion_bound(q - q_n), taken at q's nearest
    node in joint space weighted by the lever arms (a k-d tree: a fraction of the
    forward kinematics and distances it spares)."""

    def __init__(self, body, q, clearance):
        self.body, self.q, self.clearance = body, q, clearance
        self.arms = np.asarray(body.lever_arms(), dtype=np.float64)
        self.tree = None   # built on first use: execution's stop check never needs it

    def lower(self, q):
        """(B,) a lower bound on the clearance of each row of q (B, J)."""
        if self.tree is None:
            self.tree = cKDTree(self.q * self.arms)
        _, nearest = self.tree.query(q * self.arms)
        return self.clearance[nearest] - self.body.motion_bound(q - self.q[nearest])


class ObstacleBarrier(torch.nn.Module):
    """q (B, J) -> (B, 1): cost * relu(1 - clearance / influence)^2, the ambient
    coordinate the metric appends (LatentMetric.with_ambient): zero away from
    objects, rising smoothly toward them, so a path pays twice the barrier's rise to
    approach an object and come back. Rows whose known lower bound (KnownClearances)
    is already beyond the influence are zero without being measured: most of what a
    path's measure embeds is far from every object."""

    def __init__(self, checker, influence, cost):
        super().__init__()
        self.checker = checker
        self.influence, self.cost = float(influence), float(cost)
        self.known = None   # the scene's KnownClearances, once the nodes' are measured

    def forward(self, q):
        body = self.checker.body
        out = q.new_zeros(len(q), 1)
        if not self.checker.object_ids or len(q) == 0:
            return out
        rows = None
        if self.known is not None and not under_func_transform(q):
            near = ~(self.known.lower(q.detach().double().cpu().numpy()) >= self.influence)
            if not near.any():
                return out
            rows = torch.as_tensor(np.flatnonzero(near), device=q.device)
            q = q.index_select(0, rows)
        clearance = self.checker.clearance_within(q.to(body.dtype), self.influence)
        rise = (self.cost * torch.relu(1.0 - clearance / self.influence) ** 2)[:, None]
        return rise.to(out.dtype) if rows is None else out.index_put((rows,), rise.to(out.dtype))

    def of_clearance(self, clearance):
        return self.cost * np.maximum(0.0, 1.0 - np.asarray(clearance) / self.influence) ** 2


class RobotWorld:
    """The scene the next request plans in, and its views through served models."""

    def __init__(self, settings: WorldSettings, frame=""):
        self.settings = settings
        self.scene = Scene(frame=frame)
        self._views = {}
        self._lock = threading.Lock()

    def update(self, change):
        """Apply change(scene) -> scene atomically; returns the new scene."""
        with self._lock:
            self.scene = change(self.scene)
            self._views = {}
            return self.scene

    def view(self, served):
        """The PathWorld of the current scene for this served model (None: no objects)."""
        scene = self.scene
        if not scene.objects:
            return None
        if served.body is None:
            raise RequestError(
                "the scene holds %d object(s) but the server has no robot body to check "
                "them against: give the robot's URDF on robot_description (or clear the "
                "scene)" % len(scene.objects))
        key = (id(served), scene.version)
        with self._lock:
            view = self._views.get(key)
            if view is None:
                view = PathWorld(served, served.body, scene, self.settings)
                self._views = {key: view}   # one scene at a time: older views are done
        return view

    def request(self, served, start, goal):
        """One request's RequestWorld, or None while the scene is empty. start, goal:
        (latent point, requested configuration or None); the ends are checked first
        (a pose inside an object is refused at once)."""
        world = self.view(served)
        if world is None:
            return None
        ends = [q if q is not None else run_model(served, "decode", z[None])[0]
                for z, q in (start, goal)]
        margin = world.margin(world.endpoint_clearances(*ends))
        return world.request(start[1], goal[1], margin)


def robot_body(urdf, joint_names, spheres=None, warn=print):
    """The body of a URDF for collision checks, or None (no URDF, or one whose links
    cannot be covered: the server then serves only while the scene is empty)."""
    if urdf is None:
        return None
    try:
        return RobotBody.from_urdf(urdf, list(joint_names), spheres=spheres)
    except (URDFError, ValueError) as e:
        warn("no collision checks: %s" % e)
        return None


class PathWorld:
    """One scene through one served model: what the graph search, the shortening,
    the refinements and the planner ask of the world."""

    def __init__(self, served, body, scene, settings: WorldSettings):
        self.served, self.body, self.scene, self.settings = served, body, scene, settings
        self.checker = CollisionChecker(body, scene, padding=settings.padding)
        self.barrier = ObstacleBarrier(self.checker, settings.influence, settings.cost)
        self.columns = len(served.joint_names)
        self.metric = served.graph.metric.with_ambient(self.barrier, self.columns)
        graph = served.graph
        self.node_q = graph.node_x[:, :self.columns].double().cpu().numpy()
        self.node_clearance, _, _ = self.checker.clearance(self.node_q)
        self.node_barrier = self.barrier.of_clearance(self.node_clearance)
        if np.isfinite(body.lever_arms()).all():   # else no bound: every row measured
            self.barrier.known = KnownClearances(body, self.node_q, self.node_clearance)
        self.edges = SceneEdges(self, CHORD_ALLOWANCE)   # the lazy edge index
        self._cache = {}   # the scene's search, built on first use
        self._lock = threading.Lock()

    # --- the graph under this scene -------------------------------------------------
    def search(self):
        """The graph's search for this scene: edges reweighted by the barrier (an edge
        pays the barrier's change between its ends, the least its straight line pays),
        without the edges with an end inside an object; a request leaves out those
        with an end nearer than its margin through blocked(margin), and its lazy
        rounds (graph/lazy.py) check the rest of each edge as its path uses it. Built
        once per scene from the nodes' clearances alone (no edge is decoded: a scene
        update costs the next request little)."""
        return self._scene_graph()[2]

    def blocked(self, margin, pairs=()):
        """Boolean mask over the scene search's CSR data (what its search takes as
        `blocked`): its edges with an end nearer than margin to an object, or found
        nearer along their decoded motion (near_edges), and the node pairs given."""
        near = self._end_clearances()
        rows = (near >= 0) & ((near < margin) | self.edges.found_nearer(margin))
        search = self.search()
        mask = np.zeros(len(search.matrix.data), dtype=bool)
        mask[self._edge_positions()[rows].ravel()] = True
        if len(pairs):
            mask[search.positions(pairs)] = True
        return mask

    def _edge_positions(self):
        """(E, 2) positions in the scene search's CSR data of each graph edge (i, j)
        and (j, i); edges the search leaves out point at nothing (never read)."""
        if "positions" not in self._cache:
            keep = self._scene_graph()[0]
            edges = self.served.graph.edges
            found = np.zeros((len(edges), 2), dtype=np.int64)
            found[keep] = self.search().positions(edges[keep]).reshape(2, -1).T
            self._cache["positions"] = found
        return self._cache["positions"]

    def edge_set(self, margin):
        """(edges, weights) of the graph as this scene leaves it (~geodesic_lengths):
        every edge decoded and checked, those nearer than margin left out."""
        keep = self.edges.all_bounds() >= margin
        return self.served.graph.edges[keep], self._scene_graph()[1][keep]

    def near_edges(self, node_path, margin):
        return self.edges.near(node_path, margin)

    def _end_clearances(self):
        """(E,) each graph edge's smaller clearance at its two ends."""
        edges = self.served.graph.edges
        return np.minimum(self.node_clearance[edges[:, 0]], self.node_clearance[edges[:, 1]])

    def _scene_graph(self):
        with self._lock:
            if "graph" not in self._cache:
                graph = self.served.graph
                i, j = graph.edges[:, 0], graph.edges[:, 1]
                keep = self._end_clearances() >= 0
                weights = graph.weights + np.abs(self.node_barrier[i] - self.node_barrier[j])
                self._cache["graph"] = (keep, weights, graph.search_over(keep, weights))
            return self._cache["graph"]

    def request(self, q_start, q_goal, margin):
        return RequestWorld(self, q_start, q_goal, margin)

    def path_embedding(self, x, ids):
        """The world metric's embedding of a found path's points from the graph's (x:
        node_x at nodes, the query ends decoded; ids: the search's path, query ends n
        and n + 1): the barrier appended, as measured at the nodes for this scene,
        and measured now at the query ends."""
        n = len(self.node_barrier)
        inside = ids < n
        h = np.empty(len(ids))
        h[inside] = self.node_barrier[ids[inside]]
        if not inside.all():
            ends = torch.as_tensor(np.flatnonzero(~inside), device=x.device)
            with torch.no_grad():
                h[~inside] = self.barrier(x[ends, :self.columns])[:, 0].double().cpu().numpy()
        return torch.cat([x, torch.as_tensor(h, dtype=x.dtype, device=x.device)[:, None]], 1)

    def decode(self, z):
        """Joint positions of latent points: the decoder mean (without the metric's
        other coordinates, which a collision check does not need)."""
        return run_model(self.served, "decode", np.asarray(z, dtype=np.float64))

    # --- the motion a controller gets ------------------------------------------------
    def endpoint_clearances(self, q_start, q_goal):
        """Refuse a start or goal whose body is inside an object; (clearances)."""
        out = []
        for q, what in ((q_start, "start"), (q_goal, "goal")):
            if q is None:
                out.append(np.inf)
                continue
            contact = self.checker.nearest(np.asarray(q, dtype=np.float64)[None])
            if contact.clearance < 0:
                raise RequestError(
                    "the %s pose collides: %s is %.3f m inside %s; choose a %s clear of the "
                    "object or remove it from the scene" % (
                        what, contact.link, -contact.clearance, contact.object, what))
            out.append(contact.clearance)
        return out

    def margin(self, clearances):
        """The clearance a request plans with: collision_padding, or less where an end
        itself is nearer an object (half its clearance: the motion may start there)."""
        return float(min([self.settings.padding] + [0.5 * c for c in clearances]))

    def check_motion(self, timing, a_peak):
        """Refuses a timed motion that comes into contact with an object, naming the
        link, the object and the time (first_contact); returns the Contact of its
        smallest clearance, for the response's stats."""
        hit, ts, q, slacks = self.first_contact(timing, a_peak)
        if hit is not None:
            slack = slacks[hit.index]
            raise RequestError(
                "refused: the motion would collide: %s reaches %s at t = %.2f s (clearance "
                "%.3f m, checked with %.3f m for the curve between samples); no motion that "
                "touches an object is served: move the object or the goal, or demonstrate a "
                "way around it" % (hit.link, hit.object, ts[hit.index], hit.clearance, slack))
        return self.checker.smallest(q)

    def first_contact(self, timing, a_peak, since=0.0):
        """(Contact or None, sample times, samples, slack per sample): the first contact
        with an object of the motion as a controller draws it from `since` (s) on: the
        quintic through the points' positions, velocities and accelerations, sampled
        MOTION_SUBSTEPS times per interval (END_SUBSTEPS in the first and last, where
        the motion may start or end near an object); between samples h apart it
        strays from their chord by at most a_peak h^2 / 8 per joint, which the body's
        motion bound turns into the slack those samples keep on top of the check's own
        (a sample shared by two intervals keeps the larger)."""
        t = timing.times
        quintic = BPoly.from_derivatives(t, np.stack([timing.positions, timing.velocities,
                                                      timing.accelerations], 1))
        count = np.full(len(t) - 1, MOTION_SUBSTEPS)
        count[[0, -1]] = END_SUBSTEPS
        h = np.diff(t) / count
        interval = np.repeat(np.arange(len(count)), count)
        first = np.repeat(np.cumsum(count) - count, count)
        ts = np.r_[t[interval] + (np.arange(len(interval)) - first) * h[interval], t[-1]]
        spread = self.body.motion_bound(np.asarray(a_peak)[None] * h[:, None] ** 2 / 8)
        slack = np.r_[spread[interval], spread[-1]]
        slack[1:-1] = np.maximum(slack[1:-1], spread[interval][:-1])
        since = min(since, t[-1])   # a motion already over: its last pose, not beyond
        if since > 0:
            keep = ts > since
            before = max(0, int(np.argmax(keep)) - 1) if keep.any() else len(ts) - 1
            ts, slack = np.r_[since, ts[keep]], np.r_[slack[before], slack[keep]]
        q = quintic(ts)
        hit = self.checker.check_path(q, margin=slack, resolution=self.settings.resolution)
        return hit, ts, q, slack


class RequestWorld:
    """One request in one scene: its ends (the model's residuals at them are carried
    along every path, as the served motion carries them) and the clearance it keeps.
    What the graph search (graph/lazy.py), the candidates and the refinements ask."""

    def __init__(self, world, q_start, q_goal, margin):
        self.world, self.q_start, self.q_goal, self.margin = world, q_start, q_goal, margin
        self.metric = world.metric
        self.dropped = set()

    def search(self):
        return self.world.search()

    def path_embedding(self, x, ids):
        return self.world.path_embedding(x, ids)

    def blocked(self):
        """The edges this request leaves out, as a mask over the scene search's CSR
        data: the scene's edges nearer than its margin, and those its own lazy rounds
        found too near as it moves."""
        return self.world.blocked(self.margin, np.array(sorted(self.dropped)).reshape(-1, 2))

    def near_edges(self, node_path):
        """(K, 2) node pairs of the path's graph edges too near an object (each decoded
        and checked once per scene; PathWorld.near_edges)."""
        return self.world.near_edges(np.asarray(node_path), self.margin)

    def block(self, pairs):
        """Graph edges (node pairs) this request found too near an object, as it moves."""
        self.dropped.update((min(a, b), max(a, b)) for a, b in pairs)

    def violations(self, points):
        """(len(points) - 1,) bool: which segments of the latent path from start to goal
        come within margin of an object, as the served motion would move (decoded,
        residuals carried)."""
        q, segment = self.positions(points)
        bad_steps = self.world.checker.violations(q, self.margin,
                                                  self.world.settings.resolution)
        bad = np.zeros(len(points) - 1, dtype=bool)
        bad[segment[:-1][bad_steps]] = True
        return bad

    def polyline_clear(self, points):
        return not self.violations(points).any()

    def keep_clear(self, positions, extra=False):
        """(positions, how): waypoints as they are (how "") when they and the chords between
        them keep the margin, else bent around the objects in joint space
        (serving/detour.py), else their blocked stretch replaced by a way through a
        local joint-space roadmap (serving/roadmap.py), else bent with every row
        fitted; RequestError when none clears. extra: aim for the margin plus the
        bend's own allowance (for points already found too near between them), as far
        as the motion's ends allow."""
        checker, resolution = self.world.checker, self.world.settings.resolution
        margin = self.margin
        if extra:   # as much of the allowance as the motion's ends keep (they cannot move)
            ends = checker.clearance(np.asarray(positions)[[0, -1]])[0].min()
            margin += min(EXTRA_CLEARANCE, max(0.0, float(ends) - self.margin))
        if not checker.violations(positions, margin, resolution).any():
            return positions, ""
        served = self.world.served
        ways = (("bend", lambda: bend(checker, positions, margin, resolution)),
                ("roadmap", lambda: around(checker, positions, margin, resolution,
                                           (served.limits.lower, served.limits.upper),
                                           served.recorded)),
                ("bend", lambda: bend_every_row(checker, positions, margin)))
        for how, way in ways:   # cheapest first: a failing bend_every_row takes seconds
            bent = way()
            if bent is not None:
                return bent, how
        contact = checker.smallest(positions)
        raise RequestError(
            "no collision-free motion: neither the demonstrations nor a way around them "
            "keep %.3f m from the objects (%s reaches %s); move or remove the object, "
            "demonstrate a way around it, or lower collision_padding"
            % (self.margin, contact.link, contact.object))

    def positions(self, points):
        """Joint positions along a whole latent path, decoded until no joint moves more
        than SEGMENT_CHECK_STEP between rows, the residuals carried; and the path
        segment each row lies on."""
        points = np.asarray(points, dtype=np.float64)
        z, knots = subdivide(points, self.world.served.graph.step)
        for _ in range(4):
            q = self.world.decode(z)
            steps = np.abs(np.diff(q, axis=0)).max(axis=1)
            if steps.max(initial=0.0) <= SEGMENT_CHECK_STEP:
                break
            z, fine = split(z, np.ceil(steps / SEGMENT_CHECK_STEP))
            knots = fine[knots]
        segment = np.searchsorted(knots, np.arange(len(z)), side="right") - 1
        q, _, _ = carry_residuals(q, self.q_start, self.q_goal)
        return q, np.minimum(segment, len(points) - 2)
