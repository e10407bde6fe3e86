"""A simulated 7-DoF arm: the Franka Emika Panda reaching to a table with a box.

Kinematics are Franka's published modified-DH parameters and joint limits.
Demonstrations are smooth (clamped cubic splines in joint space),
collision-checked against the table and the box, from a few start poses to
targets on the table. A band of the table can be left out of the targets: the
data hole that active learning later has to fill. `demonstration(...)` takes an
optional via configuration, so a teacher can be asked for "a demonstration
passing near this configuration".
"""
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.interpolate import CubicSpline

JOINT_NAMES = ["panda_joint%d" % i for i in range(1, 8)]
# Modified DH (Craig): a_{i-1}, d_i, alpha_{i-1}; the 8th row is the flange.
DH_A = [0.0, 0.0, 0.0, 0.0825, -0.0825, 0.0, 0.088, 0.0]
DH_D = [0.333, 0.0, 0.316, 0.0, 0.384, 0.0, 0.0, 0.107]
DH_ALPHA = [0.0, -np.pi / 2, np.pi / 2, np.pi / 2, -np.pi / 2, np.pi / 2, np.pi / 2, 0.0]
HAND_LENGTH = 0.1034  # flange -> fingertip centre
Q_MIN = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
Q_MAX = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
Q_HOME = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])


def _dh(a, d, alpha, theta):
    """Batched modified-DH transform RotX(alpha) TransX(a) RotZ(theta) TransZ(d)."""
    ct, st = torch.cos(theta), torch.sin(theta)
    ca, sa = np.cos(alpha), np.sin(alpha)
    zero, one = torch.zeros_like(theta), torch.ones_like(theta)
    rows = [[ct, -st, zero, a * one],
            [st * ca, ct * ca, -sa * one, -d * sa * one],
            [st * sa, ct * sa, ca * one, d * ca * one],
            [zero, zero, zero, one]]
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def forward_kinematics(q):
    """q (B, 7) -> frames (B, 9, 4, 4): joints 1-7, flange, fingertip."""
    q = torch.as_tensor(q, dtype=torch.float64)
    T = torch.eye(4, dtype=q.dtype).expand(q.shape[0], 4, 4)
    frames = []
    for i in range(8):
        theta = q[:, i] if i < 7 else torch.zeros_like(q[:, 0])
        T = T @ _dh(DH_A[i], DH_D[i], DH_ALPHA[i], theta)
        frames.append(T)
    tip = torch.eye(4, dtype=q.dtype).repeat(q.shape[0], 1, 1)
    tip[:, 2, 3] = HAND_LENGTH
    frames.append(T @ tip)
    return torch.stack(frames, 1)


def fingertip(q):
    return forward_kinematics(q)[:, -1, :3, 3]


@dataclass
class Workspace:
    """Table (z = 0) and a box obstacle on it; targets sampled on the table."""
    box_center: tuple = (0.5, 0.0, 0.1)
    box_half: tuple = (0.06, 0.08, 0.1)
    link_radius: float = 0.05
    target_x: tuple = (0.35, 0.7)
    target_y: tuple = (-0.45, 0.45)
    target_z: float = 0.06
    hole_y: tuple = (0.12, 0.32)   # the band of targets left out when hole=True

    def link_points(self, q, per_link=4):
        """Points along the arm's links (B, P, 3) from joint 2 onwards."""
        origins = forward_kinematics(q)[:, :, :3, 3]
        s = torch.linspace(0, 1, per_link, dtype=origins.dtype)[None, None, :, None]
        seg = origins[:, 1:-1, None] + s * (origins[:, 2:, None] - origins[:, 1:-1, None])
        return seg.reshape(q.shape[0], -1, 3)

    def in_collision(self, q):
        """Boolean (B,): any link point inside the inflated box or below the table."""
        q = torch.as_tensor(np.atleast_2d(q), dtype=torch.float64)
        p = self.link_points(q)
        c = torch.tensor(self.box_center, dtype=p.dtype)
        h = torch.tensor(self.box_half, dtype=p.dtype) + self.link_radius
        in_box = ((p - c).abs() < h).all(-1).any(-1)
        below = (p[..., 2] < 0.0).any(-1)
        return (in_box | below).numpy()

    def within_limits(self, q):
        q = np.atleast_2d(q)
        return ((q >= Q_MIN - 1e-9) & (q <= Q_MAX + 1e-9)).all(-1)

    def sample_targets(self, n, rng, hole=True):
        """Targets on the table, outside the box footprint and (optionally) the hole."""
        out = []
        while len(out) < n:
            p = np.array([rng.uniform(*self.target_x), rng.uniform(*self.target_y),
                          self.target_z])
            off_box = np.any(np.abs(p[:2] - self.box_center[:2])
                             > np.array(self.box_half[:2]) + 0.08)
            in_hole = hole and self.hole_y[0] <= p[1] <= self.hole_y[1]
            if off_box and not in_hole:
                out.append(p)
        return np.array(out)


def inverse_kinematics(targets, steps=300, seed_q=None):
    """Batched position IK with the hand pointing down, by Adam on joint angles.

    Returns (q (B, 7), position error (B,)).
    """
    targets = torch.as_tensor(targets, dtype=torch.float64)
    ref = torch.as_tensor(Q_HOME, dtype=torch.float64).repeat(len(targets), 1)
    ref[:, 0] = torch.atan2(targets[:, 1], targets[:, 0])
    q = (ref if seed_q is None else torch.as_tensor(seed_q, dtype=torch.float64)).clone()
    q.requires_grad_(True)
    lo, hi = torch.as_tensor(Q_MIN), torch.as_tensor(Q_MAX)
    opt = torch.optim.Adam([q], lr=0.03)
    for _ in range(steps):
        frames = forward_kinematics(q)
        pos_err = ((frames[:, -1, :3, 3] - targets) ** 2).sum(-1)
        down = 1.0 + frames[:, -1, 2, 2]              # hand z-axis along -z
        posture = ((q - ref) ** 2).sum(-1)
        loss = (pos_err + 0.02 * down + 1e-3 * posture).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            q.copy_(torch.max(torch.min(q, hi), lo))
    with torch.no_grad():
        err = (fingertip(q) - targets).norm(dim=-1)
    return q.detach().numpy(), err.numpy()


class ArmSimulator:
    """Generates demonstrations: smooth, collision-free joint trajectories."""

    def __init__(self, workspace=None, points_per_demo=25):
        self.workspace = workspace or Workspace()
        self.points_per_demo = points_per_demo
        self.start_poses = np.array([Q_HOME + [dq1, 0, 0, 0, 0, 0, 0]
                                     for dq1 in (-0.7, 0.0, 0.7)])

    def spline(self, knots, n=None):
        """Clamped cubic spline through joint-space knots (zero end velocities)."""
        knots = np.asarray(knots, dtype=np.float64)
        gaps = np.linalg.norm(np.diff(knots, axis=0), axis=1)
        s = np.concatenate([[0.0], np.cumsum(np.maximum(gaps, 1e-6))])
        s /= s[-1]
        t = np.linspace(0.0, 1.0, n or self.points_per_demo)
        return CubicSpline(s, knots, bc_type="clamped", axis=0)(t)

    def is_valid(self, trajectory):
        return bool(self.workspace.within_limits(trajectory).all()
                    and not self.workspace.in_collision(trajectory).any())

    def lift_configurations(self, starts, goals):
        """Via configurations with the hand above the box, between start and goal."""
        tips = 0.5 * (fingertip(starts) + fingertip(goals)).numpy()
        tips[:, 2] = self.workspace.box_center[2] + self.workspace.box_half[2] + 0.25
        return inverse_kinematics(tips, seed_q=0.5 * (starts + goals))[0]

    def demonstration(self, start, goal, via=None):
        """A trajectory start -> (via) -> goal, or None if it is invalid.

        Without a via point, a colliding direct motion is retried over a lifted
        via configuration above the box.
        """
        if via is not None:
            traj = self.spline([start, via, goal])
            return traj if self.is_valid(traj) else None
        traj = self.spline([start, goal])
        if self.is_valid(traj):
            return traj
        lift = self.lift_configurations(start[None], goal[None])[0]
        traj = self.spline([start, lift, goal])
        return traj if self.is_valid(traj) else None

    def demonstration_near(self, query):
        """The teacher's answer to a query configuration: a demonstration from the
        nearest start pose through the query down to the table below the hand
        (clipped into the task area).

        Raises ValueError naming the reason when the query cannot be served.
        """
        q = np.asarray(query, dtype=np.float64).reshape(-1)
        if q.shape != (7,) or not np.isfinite(q).all():
            raise ValueError("a query is 7 finite joint angles, got %s" % (q.shape,))
        if not self.workspace.within_limits(q)[0]:
            bad = [JOINT_NAMES[i] for i in np.flatnonzero((q < Q_MIN) | (q > Q_MAX))]
            raise ValueError("query outside the joint limits of %s" % ", ".join(bad))
        if self.workspace.in_collision(q)[0]:
            raise ValueError("query is in collision with the table or the box")
        start = self.start_poses[np.argmin(np.linalg.norm(self.start_poses - q, axis=1))]
        for goal in self.goals_below(q):
            demo = self.demonstration(start, goal, via=q)
            if demo is not None:
                return demo
        raise ValueError("no collision-free demonstration passes through the query")

    def goals_below(self, q, spread=0.15):
        """Goal configurations for table targets below the hand (in the task area,
        off the box), nearest first."""
        ws = self.workspace
        tip = fingertip(q[None]).numpy()[0]
        offsets = np.array([[0, 0], [0, spread], [0, -spread], [spread, 0], [-spread, 0],
                            [0, 2 * spread], [0, -2 * spread]])
        xy = np.clip(tip[:2] + offsets, [ws.target_x[0], ws.target_y[0]],
                     [ws.target_x[1], ws.target_y[1]])
        off_box = np.any(np.abs(xy - ws.box_center[:2]) > np.array(ws.box_half[:2]) + 0.08,
                         axis=1)
        targets = np.c_[xy[off_box], np.full(off_box.sum(), ws.target_z)]
        if len(targets) == 0:
            return []
        goals, err = inverse_kinematics(targets)
        ok = (err < 0.02) & ~ws.in_collision(goals)
        return list(goals[ok])

    def dataset(self, n_demos=200, hole=True, seed=0):
        """Demonstrations to targets on the table; returns ArmDataset."""
        rng = np.random.default_rng(seed)
        demos = []
        for _ in range(10):  # batches of candidates until enough are feasible
            demos += self._feasible_demos(int((n_demos - len(demos)) * 1.4) + 5, rng, hole)
            if len(demos) >= n_demos:
                demos = demos[:n_demos]
                return ArmDataset(np.concatenate(demos), list(JOINT_NAMES), demos)
        raise RuntimeError("only %d of %d demonstrations were feasible" % (len(demos), n_demos))

    def _feasible_demos(self, n, rng, hole):
        targets = self.workspace.sample_targets(n, rng, hole)
        goals, err = inverse_kinematics(targets)
        starts = self.start_poses[rng.integers(len(self.start_poses), size=len(goals))]
        starts = np.clip(starts + rng.normal(0, 0.05, starts.shape), Q_MIN, Q_MAX)
        keep = (err < 0.01) & ~self.workspace.in_collision(goals)
        starts, goals = starts[keep], goals[keep]
        demos = [self.spline([s, g]) for s, g in zip(starts, goals)]
        blocked = [i for i, d in enumerate(demos) if not self.is_valid(d)]
        if blocked:  # one batched IK for all the lifted via points
            lifts = self.lift_configurations(starts[blocked], goals[blocked])
            for i, lift in zip(blocked, lifts):
                d = self.spline([starts[i], lift, goals[i]])
                demos[i] = d if self.is_valid(d) else None
        return [d for d in demos if d is not None]


@dataclass
class ArmDataset:
    data: np.ndarray                       # (N, 7) joint configurations, radians
    joint_names: list
    demos: list = field(default_factory=list)  # the trajectories the poses came from


def arm_dataset(n_demos=200, hole=True, seed=0):
    return ArmSimulator().dataset(n_demos=n_demos, hole=hole, seed=seed)


# Two skills (the active-learning paper's arm experiment): reaching the table in two
# sectors of azimuth clear of the box, from the ready pose turned towards the target,
# with the sector of fingertip azimuths between the skills never demonstrated. One
# reach, so each skill is a 2-D family (azimuth, progress) a 2-D latent space can hold.
SKILL_AZIMUTHS = ((0.3, 0.7), (1.1, 1.5))    # radians, atan2(y, x) of the targets
SKILL_GAP = (SKILL_AZIMUTHS[0][1], SKILL_AZIMUTHS[1][0])
SKILL_REACH = (0.55, 0.55)                   # target distance from the base, metres


def azimuth(q):
    """The fingertip's azimuth about the base, atan2(y, x): (B,)."""
    tip = fingertip(np.atleast_2d(q)).numpy()
    return np.arctan2(tip[:, 1], tip[:, 0])


def reach_targets(azimuths, reach, z):
    return np.c_[reach * np.cos(azimuths), reach * np.sin(azimuths), np.full(len(azimuths), z)]


def two_skills(n_demos=150, seed=0):
    """Demonstrations of two skills with no demonstration between them: about
    half reach targets in each sector of SKILL_AZIMUTHS (in proportion to its
    width), each from the ready pose turned to the target. Returns ArmDataset."""
    sim = ArmSimulator()
    rng = np.random.default_rng(seed)
    widths = np.array([hi - lo for lo, hi in SKILL_AZIMUTHS])
    wants = np.diff(np.r_[0, np.round(n_demos * np.cumsum(widths) / widths.sum())]).astype(int)
    demos = []
    for (lo, hi), want in zip(SKILL_AZIMUTHS, wants):
        got = []
        for _ in range(10):   # batches of candidates until enough are feasible
            got += reaches(sim, (lo, hi), int((want - len(got)) * 1.4) + 5, rng)
            if len(got) >= want:
                break
        if len(got) < want:
            raise RuntimeError("only %d of %d demonstrations were feasible" % (len(got), want))
        demos += got[:want]
    return ArmDataset(np.concatenate(demos), list(JOINT_NAMES), demos)


def reaches(sim, sector, n, rng, start_noise=0.03, avoid=SKILL_GAP):
    """Up to n demonstrations reaching table targets at azimuths drawn from `sector`,
    each from the ready pose turned to its target (plus `start_noise` radians, as a
    person would leave it), dropping any that pass through the `avoid` sector."""
    ws = sim.workspace
    phi = rng.uniform(*sector, n)
    targets = reach_targets(phi, rng.uniform(*SKILL_REACH, n), ws.target_z)
    off_box = np.any(np.abs(targets[:, :2] - ws.box_center[:2])
                     > np.array(ws.box_half[:2]) + 0.08, axis=1)
    goals, err = inverse_kinematics(targets[off_box])
    ok = (err < 0.01) & ~ws.in_collision(goals)
    starts = Q_HOME + np.c_[phi[off_box][ok], np.zeros((ok.sum(), 6))]
    if start_noise:
        starts = starts + rng.normal(0, start_noise, (ok.sum(), 7))
    demos = [d for d in (sim.demonstration(s, g) for s, g in zip(starts, goals[ok]))
             if d is not None]
    if avoid is None:
        return demos
    # A motion that swings into the gap on its way (a lifted detour) is not this skill.
    return [d for d in demos if not ((azimuth(d) > avoid[0]) & (azimuth(d) < avoid[1])).any()]
