"""The demo's task on the simulated Panda: carrying an object over the box.

Each demonstration picks at a spot on the table left of the box (x, -0.30 m), lifts
over the box and places on a tray right of it (x, +0.25 m, 0.20 m high), for places
x along the table; a band of x (HOLE) was never demonstrated. In joint space every
demonstration curves (the lift), so the straight line between a pick and its place
leaves them by about half a radian and drives the hand through the box: what a
served motion should not do. The demonstrations are clamped cubic splines through
the pick, the top of the lift and the place (sim/arm.py's IK, hand pointing down),
with a person's variation: the pick pose differs by `KNOT_NOISE` rad per joint from
one demonstration to the next, and every recorded pose by `NOISE` rad. Each carry is
recorded densely (POINTS poses, about 0.02 rad apart, as a recording at a fixed rate
would be): with few poses per carry and many carries, the recordings would be dense
across the carries and sparse along them, and the data-aware metric would make the
served motion zig-zag across them (measured: 200 carries of 25 poses served in 13.5 s
what 40 of 125 serve in 6 s).

`RouteTeacher` is the demo's teacher: asked about a configuration, it demonstrates
the carry whose route passes nearest to it (the same task, at that place).
"""
from dataclasses import dataclass

import numpy as np

from latent_geodesics.learning.teachers import Refused
from latent_geodesics.sim.arm import (
    JOINT_NAMES,
    ArmSimulator,
    Workspace,
    fingertip,
    inverse_kinematics,
)

PLACES = (0.30, 0.70)    # m, x of the pick and place spots along the table
HOLE = (0.45, 0.57)      # m, places never demonstrated
PICK = (-0.30, 0.06)     # m, (y, z) of the pick spot: on the table, left of the box
PLACE = (0.25, 0.20)     # m, (y, z) of the place spot: a tray right of the box
LIFT = (-0.05, 0.45)     # m, (y, z) of the hand at the top of the lift, over the box
POINTS = 125             # poses per demonstration
KNOT_NOISE = 0.02        # rad, how much a person's pick pose varies
NOISE = 0.01             # rad, recording noise of every pose
BOX = (Workspace.box_center, Workspace.box_half)   # m, the box on the table: centre, half size
TEACHER_REACH = 0.3      # rad: a query farther than this from every carry is refused


def routes(places, rng=None, knot_noise=0.0, noise=0.0, n=None):
    """One carry per place x: (n, 7) joint trajectories, pick -> top of the lift ->
    place; noise as a person's (see the module)."""
    x = np.asarray(places, dtype=np.float64)
    one = np.ones_like(x)
    spots = np.r_[np.c_[x, PICK[0] * one, PICK[1] * one], np.c_[x, PLACE[0] * one,
                                                                  PLACE[1] * one]]
    q = inverse_kinematics(spots)[0]
    picks, places_q = q[:len(x)], q[len(x):]
    tops = inverse_kinematics(np.c_[x, LIFT[0] * one, LIFT[1] * one],
                              seed_q=0.5 * (picks + places_q))[0]
    rng = rng if rng is not None else np.random.default_rng(0)
    sim = ArmSimulator()
    out = []
    for pick, top, place in zip(picks, tops, places_q):
        route = sim.spline([pick + rng.normal(0, knot_noise, 7), top, place], n or POINTS)
        out.append(route + rng.normal(0, noise, route.shape))
    return out


@dataclass
class CarryData:
    data: np.ndarray      # (N, 7) every recorded pose
    joint_names: list
    demos: list           # (POINTS, 7) each
    places: np.ndarray    # (D,) m, each demonstration's place x

    def ends(self, k):
        """Indices into data of demonstration k's pick and place poses."""
        start = k * POINTS
        return start, start + POINTS - 1


def carry_dataset(n_demos=40, seed=0):
    """n_demos carries to places drawn uniformly along PLACES outside HOLE."""
    rng = np.random.default_rng(seed)
    places = rng.uniform(*PLACES, 4 * n_demos)
    places = places[(places < HOLE[0]) | (places > HOLE[1])][:n_demos]
    demos = routes(places, rng, KNOT_NOISE, NOISE)
    return CarryData(np.concatenate(demos), list(JOINT_NAMES), demos, places)


def showcase_pairs(carry, n_pairs, allowed=None):
    """(pick index, place index) of recorded carries spread along the places outside
    the hole (nearest to evenly spaced targets); allowed (N,) bool, optional: poses
    that may be endpoints (the ones the model reproduces)."""
    ok = np.ones(len(carry.places), dtype=bool)
    if allowed is not None:
        ok &= np.array([allowed[a] and allowed[b] for a, b in map(carry.ends,
                                                                  range(len(carry.places)))])
    pairs = []
    for target in np.linspace(PLACES[0] + 0.02, PLACES[1] - 0.02, n_pairs):
        k = int(np.flatnonzero(ok)[np.argmin(np.abs(carry.places[ok] - target))])
        if carry.ends(k) not in pairs:
            pairs.append(carry.ends(k))
    return pairs


def hole_places(n):
    """Places inside the hole, evenly spread, its edges left out (m)."""
    return np.linspace(*HOLE, n + 2)[1:-1]


def through_box(motion):
    """Whether a joint-space motion brings the arm into the box or the table (the
    simulator's own check: points along the links, inflated by their radius)."""
    return bool(Workspace().in_collision(np.asarray(motion)).any())


def sideways(positions, place):
    """m: how far the hand strays along the table (x) from the place's own route."""
    return float(np.abs(fingertip(np.asarray(positions)).numpy()[:, 0] - place).max())


class RouteTeacher:
    """The demo's teacher: the carry whose noise-free route passes nearest to the
    asked configuration, demonstrated as a person would (with noise)."""
    joint_names = list(JOINT_NAMES)

    def __init__(self, resolution=0.0025, seed=1):
        self.places = np.arange(PLACES[0], PLACES[1] + 1e-9, resolution)
        self.bank = np.stack(routes(self.places))        # (P, POINTS, 7), noise-free
        self.rng = np.random.default_rng(seed)
        self.sim = ArmSimulator()

    def nearest(self, q):
        """(place x of the nearest route, its distance in rad)."""
        d = np.linalg.norm(self.bank - np.asarray(q, dtype=np.float64), axis=-1).min(1)
        k = int(np.argmin(d))
        return float(self.places[k]), float(d[k])

    def route(self, place, n=200):
        """The teacher's own (noise-free) carry to `place`, densely."""
        return routes([place], n=n)[0]

    def demonstrate(self, query):
        q = np.asarray(query, dtype=np.float64).reshape(-1)
        if q.shape != (7,) or not np.isfinite(q).all():
            raise Refused("a query is 7 finite joint angles, got %s" % (q.shape,))
        place, distance = self.nearest(q)
        if distance > TEACHER_REACH:
            raise Refused("the query is %.2f rad from every carry of the task (at most %.2f)"
                          % (distance, TEACHER_REACH))
        demo = routes([place], self.rng, KNOT_NOISE, NOISE)[0]
        if not self.sim.is_valid(demo):
            raise Refused("the carry to x = %.3f m leaves the joint limits or collides" % place)
        return demo
