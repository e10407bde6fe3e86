"""Simulated teachers: answer a query configuration with a demonstration near it."""
from dataclasses import dataclass

import numpy as np

from latent_geodesics.settings import setting
from latent_geodesics.sim.arm import JOINT_NAMES as ARM_JOINTS
from latent_geodesics.sim.arm import ArmSimulator
from latent_geodesics.sim.pendulum import JOINT_NAMES as PENDULUM_STATES
from latent_geodesics.sim.pendulum import states_near


class Refused(Exception):
    """The teacher cannot demonstrate near this query; the message says why."""


def in_joint_order(joint_names, rows, wanted):
    """A demonstration's positions (T rows, one per point, in joint_names' order) in
    the `wanted` joint order, matched by name as the server matches requests.
    Refused (naming the joints) when names repeat, are unknown or missing, or the
    rows do not fit them."""
    names = list(joint_names)
    if len(set(names)) != len(names):
        raise Refused("the demonstration's joint names repeat: %s" % names)
    unknown = [n for n in names if n not in wanted]
    missing = [n for n in wanted if n not in names]
    if unknown or missing:
        raise Refused("the demonstration's joints %s do not match the model's %s (unknown %s, "
                      "missing %s)" % (names, list(wanted), unknown, missing))
    if any(len(row) != len(names) for row in rows):
        raise Refused("a demonstration point has %s positions for %d joints"
                      % (sorted({len(row) for row in rows} - {len(names)}), len(names)))
    order = [names.index(n) for n in wanted]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))[:, order]


def checked_demonstration(demo, width):
    """A teacher's answer as a finite (T >= 1, width) array, else Refused saying why."""
    try:
        demo = np.asarray(demo, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise Refused("the demonstration is not an array of positions: %s" % e) from None
    if demo.ndim != 2 or demo.shape[0] == 0 or demo.shape[1] != width:
        raise Refused("the demonstration has shape %s, not (points >= 1, %d joints)"
                      % (demo.shape, width))
    if not np.isfinite(demo).all():
        raise Refused("the demonstration holds NaN or inf")
    return demo


class ArmTeacher:
    """The simulated Panda: a collision-free trajectory through the query."""
    joint_names = list(ARM_JOINTS)

    def __init__(self):
        self.sim = ArmSimulator()

    def demonstrate(self, query):
        try:
            return self.sim.demonstration_near(query)
        except ValueError as e:
            raise Refused(str(e)) from None


class PendulumTeacher:
    """The simulated pendulum: true states of rollouts starting near the query."""
    joint_names = list(PENDULUM_STATES)

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def demonstrate(self, query):
        q = np.asarray(query, dtype=np.float64).reshape(-1)
        if q.shape != (2,) or not np.isfinite(q).all():
            raise Refused("a pendulum query is a finite (angle, angular velocity)")
        if abs(q[1]) > 8.0:
            raise Refused("angular velocity %.1f rad/s is beyond the pendulum's range" % q[1])
        return states_near(q, n=10, seed=int(self.rng.integers(1 << 31)))


TEACHERS = {"arm": ArmTeacher, "pendulum": PendulumTeacher}


@dataclass(frozen=True)
class DemonstratorSettings:
    """The simulated teacher node's parameters (ROS 1 and ROS 2)."""
    system: str = setting("arm", "the simulated system that demonstrates",
                          choices=sorted(TEACHERS))
    sample_period: float = setting(0.1, "s between a demonstration's points", low=0.001,
                                   high=60.0)


def teacher_query(teacher_joints, joint_names, positions):
    """A Demonstrate request's configuration in the teacher's joint order (Refused
    when the names are not the teacher's or the counts differ)."""
    names = list(joint_names) or list(teacher_joints)
    if sorted(names) != sorted(teacher_joints) or len(set(names)) != len(names):
        raise Refused("joint names %s do not match the teacher's %s"
                      % (names, list(teacher_joints)))
    if len(positions) != len(names):
        raise Refused("%d positions for %d joints" % (len(positions), len(names)))
    by_name = dict(zip(names, positions))
    return np.array([by_name[n] for n in teacher_joints])
