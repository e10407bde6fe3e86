"""Several skills, each a curved motion in joint space: data on which the joint-space
straight line between two poses of one skill and the demonstrated motion between
them differ by a lot, so "follows the demonstrations" can be measured.

Each skill is a closed, smooth joint-space loop (a sum of two harmonics per
joint around a centre of its own) recorded several times with 1 cm noise; two
poses a quarter to half a cycle apart on one skill are joined by a curved
demonstrated arc whose chord lies far from every recording. `panda_skills` places
the same six skills within the Panda's joint limits, under its joint names, so a
scene of objects can be checked against the package's Panda URDF.
"""
from dataclasses import dataclass

import numpy as np

from latent_geodesics.sim.arm import JOINT_NAMES as PANDA_JOINTS
from latent_geodesics.sim.arm import Q_MAX, Q_MIN

JOINT_NAMES = ["joint_%d" % i for i in range(1, 8)]
CYCLE = 2 * np.pi
SPREAD = np.r_[1.5, 0.8, 1.5, 0.8, 1.5, 0.8, 1.5]   # rad: how far skill centres spread
LARGEST_AMPLITUDE = 0.7 + 0.25                       # rad: the two harmonics' largest sum


@dataclass
class CurvedSkills:
    data: np.ndarray          # (N, 7) every recorded pose
    joint_names: list
    phases: np.ndarray        # (N,) the phase of each pose on its skill's loop
    skills: np.ndarray        # (N,) which skill recorded it
    shapes: list              # per skill: (centre (7,), amplitudes (2, 7), offsets (2, 7))

    def motion(self, skill, phase_a, phase_b, n=200):
        """The noise-free demonstrated motion from phase_a to phase_b on one skill (n, 7)."""
        return skill_pose(self.shapes[skill], np.linspace(phase_a, phase_b, n))


def skill_pose(shape, phase):
    """Configuration at phase(s) on a skill's loop: (..., 7)."""
    centre, amplitude, offset = shape
    phase = np.asarray(phase, dtype=np.float64)[..., None]
    return centre + amplitude[0] * np.sin(phase + offset[0]) \
        + amplitude[1] * np.sin(2 * phase + offset[1])


def curved_skills(n_skills=6, n=3600, repeats=4, noise=0.01, seed=0, around=0.0, scale=1.0,
                  joint_names=JOINT_NAMES):
    """n poses on n_skills loops, each recorded `repeats` times from a random phase.
    around (7,) and scale (7,) place the loops: a skill's centre and amplitudes are
    scaled per joint and its centre shifted by `around` (the defaults: as drawn)."""
    rng = np.random.default_rng(seed)
    shapes = []
    for _ in range(n_skills):
        centre = rng.uniform(-1.0, 1.0, 7) * SPREAD
        amplitude = np.stack([rng.uniform(0.3, 0.7, 7), rng.uniform(0.0, 0.25, 7)])
        shapes.append((around + scale * centre, scale * amplitude,
                       rng.uniform(0, CYCLE, (2, 7))))
    per = n // (n_skills * repeats)
    skills, phases = [], []
    for s in range(n_skills):
        for _ in range(repeats):
            phases.append(rng.uniform(0, CYCLE) + np.linspace(0, CYCLE, per, endpoint=False))
            skills.append(np.full(per, s))
    phases, skills = np.concatenate(phases) % CYCLE, np.concatenate(skills)
    data = np.stack([skill_pose(shapes[s], p) for s, p in zip(skills, phases)])
    data += rng.normal(0, noise, data.shape)
    return CurvedSkills(data, list(joint_names), phases, skills, shapes)


def panda_skills(margin=0.06, **options):
    """The curved skills of the Panda (sim/arm.py's joint names and limits): centred
    in the middle of each joint's range and scaled per joint so a loop's furthest
    reach (its centre's spread plus both harmonics) stays `margin` rad inside the
    limits, which leaves the 1 cm recording noise 6 standard deviations."""
    middle, half = (Q_MAX + Q_MIN) / 2, (Q_MAX - Q_MIN) / 2
    scale = np.minimum(1.0, (half - margin) / (SPREAD + LARGEST_AMPLITUDE))
    return curved_skills(around=middle, scale=scale, joint_names=PANDA_JOINTS, **options)


def curved_pairs(skills: CurvedSkills, n_pairs=24, seed=1):
    """(index a, index b, phase_a, phase_b): poses on one skill a quarter to half a
    cycle apart, the recorded pose's own phase for each."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n_pairs:
        a = int(rng.integers(len(skills.data)))
        s, pa = skills.skills[a], skills.phases[a]
        gap = rng.uniform(0.25, 0.5) * CYCLE
        same = np.flatnonzero(skills.skills == s)
        wrapped = (skills.phases[same] - (pa + gap) + np.pi) % CYCLE - np.pi
        b = int(same[np.argmin(np.abs(wrapped))])
        out.append((a, b, pa, pa + gap + wrapped[np.argmin(np.abs(wrapped))]))
    return out
