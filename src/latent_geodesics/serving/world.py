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

from latent_geodesics.errors import RequestError
from latent_geodesics.geometry.metric import split, subdivide
from latent_geodesics.world.body import RobotBody
from latent_geodesics.world.collision import CollisionChecker, signed_distances
from latent_geodesics.world.scene import Scene
from latent_geodesics.world.urdf import URDFError

# Joint-space spacing of the decoded samples a latent segment is checked at (rad): the
# lazy check is a filter, the timed motion's check (check_motion) is the guarantee.
SEGMENT_CHECK_STEP = 0.02
MOTION_SUBSTEPS = 4   # samples of the controller's curve per trajectory interval


@dataclass(frozen=True)
class WorldSettings:
    padding: float          # m a planned motion keeps from every object
    influence: float        # m from an object where its barrier starts to rise
    cost: float             # the barrier's height at contact, in the metric's units
    resolution: float       # m a body point may move between checked configurations


class ObstacleBarrier(torch.nn.Module):
    """q (B, J) -> (B, 1): cost * relu(1 - clearance / influence)^2, the ambient
    coordinate the metric appends (LatentMetric.with_ambient): zero away from
    objects, rising smoothly toward them, so a path pays twice the barrier's rise to
    approach an object and come back."""

    def __init__(self, body, scene, influence, cost):
        super().__init__()
        self.body, self.scene = body, scene
        self.influence, self.cost = float(influence), float(cost)

    def clearance(self, q):
        centres = self.body.sphere_centres(q)                       # (B, S, 3)
        flat = centres.reshape(-1, 3)
        distance = signed_distances(self.scene, flat).min(dim=-1).values
        radii = self.body.radii.to(distance.dtype).repeat(len(centres))
        return (distance - radii).reshape(len(centres), -1).min(dim=-1).values

    def forward(self, q):
        dtype = q.dtype
        clearance = self.clearance(q.to(self.body.radii.dtype))
        rise = torch.relu(1.0 - clearance / self.influence)
        return (self.cost * rise ** 2)[:, None].to(dtype)

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
        self.barrier = ObstacleBarrier(body, scene, settings.influence, settings.cost)
        self.columns = len(served.joint_names)
        self.metric = served.graph.metric.with_ambient(self.barrier, self.columns)
        graph = served.graph
        joints = graph.node_x[:, :self.columns]
        self.node_clearance, _, _ = self.checker.clearance(joints)
        self.node_barrier = self.barrier.of_clearance(self.node_clearance)
        self.colliding_edges = set()     # graph edge indices found in collision
        self.clear_edges = set()         # ... and found clear
        self._search = None
        self._lock = threading.Lock()

    # --- the graph under this scene -------------------------------------------------
    def search(self, margin):
        """The graph's search over edges reweighted by the barrier (an edge pays the
        barrier's change between its ends, the least its straight line pays), without
        edges at nodes closer than margin to an object or found colliding."""
        with self._lock:
            if self._search is None or self._search[0] != (margin, len(self.colliding_edges)):
                self._search = ((margin, len(self.colliding_edges)), self._build_search(margin))
            return self._search[1]

    def _build_search(self, margin):
        graph = self.served.graph
        i, j = graph.edges[:, 0], graph.edges[:, 1]
        keep = (self.node_clearance[i] >= margin) & (self.node_clearance[j] >= margin)
        keep[list(self.colliding_edges)] = False
        weights = graph.weights + np.abs(self.node_barrier[i] - self.node_barrier[j])
        return graph.search_over(keep, weights)

    def node_allowed(self, margin):
        return self.node_clearance >= margin

    def segments_clear(self, za, zb, margin):
        """Whether each latent segment za[e] -> zb[e] decodes to a motion that keeps
        margin from every object, checked at decoded samples SEGMENT_CHECK_STEP apart."""
        za, zb = np.atleast_2d(za), np.atleast_2d(zb)
        clear = np.ones(len(za), dtype=bool)
        for e in range(len(za)):
            q = self._decoded(np.stack([za[e], zb[e]]))
            clear[e] = self.checker.check_path(q, margin=margin) is None
        return clear

    def polyline_clear(self, points, margin):
        return self.checker.check_path(self._decoded(points), margin=margin) is None

    def _decoded(self, points):
        """Joint positions along a latent polyline, sampled until joints move at most
        SEGMENT_CHECK_STEP between samples."""
        z, _ = subdivide(np.asarray(points, dtype=np.float64), self.served.graph.step)
        for _ in range(4):
            q = self._decode(z)
            steps = np.abs(np.diff(q, axis=0)).max(axis=1) if len(q) > 1 else np.zeros(0)
            if not len(steps) or steps.max() <= SEGMENT_CHECK_STEP:
                break
            z, _ = split(z, np.ceil(steps / SEGMENT_CHECK_STEP))
        return q

    @torch.no_grad()
    def _decode(self, z):
        x = self.served.graph.metric.embed(z)
        return x[:, :self.columns].double().cpu().numpy()

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
        """The clearance this request plans with: collision_padding, or less where an
        end itself is nearer an object (half its clearance: the motion may start there)."""
        return float(min([self.settings.padding] + [0.5 * c for c in clearances]))

    def check_motion(self, timing, a_peak):
        """Refuses a timed motion that comes into contact with an object, naming the
        link, the object and the time (first_contact); returns the Contact of its
        smallest clearance, for the response's stats."""
        hit, ts, q, slack = self.first_contact(timing, a_peak)
        if hit is not None:
            raise RequestError(
                "refused: the motion would collide: %s reaches %s at t = %.2f s (clearance "
                "%.3f m, checked with %.3f m for the curve between samples); no motion that "
                "touches an object is served: move the object or the goal, or demonstrate a "
                "way around it" % (hit.link, hit.object, ts[hit.index], hit.clearance, slack))
        return self.checker.smallest(q)

    def first_contact(self, timing, a_peak, since=0.0):
        """(Contact or None, sample times, samples, slack): the first contact with an
        object of the motion as a controller draws it from `since` (s) on: the quintic
        through the points' positions, velocities and accelerations, sampled
        MOTION_SUBSTEPS times per interval; between samples it strays from their chord
        by at most a_peak h^2 / 8 per joint, which the body's motion bound turns into
        the slack every sample must keep on top of the check's own."""
        t = timing.times
        quintic = BPoly.from_derivatives(t, np.stack([timing.positions, timing.velocities,
                                                      timing.accelerations], 1))
        h = np.diff(t) / MOTION_SUBSTEPS
        ts = np.r_[(t[:-1, None] + np.arange(MOTION_SUBSTEPS) * h[:, None]).ravel(), t[-1]]
        ts = np.r_[since, ts[ts > since]] if since > 0 else ts
        q = quintic(ts)
        slack = float(self.body.motion_bound(np.asarray(a_peak) * h.max() ** 2 / 8))
        hit = self.checker.check_path(q, margin=slack, resolution=self.settings.resolution)
        return hit, ts, q, slack
