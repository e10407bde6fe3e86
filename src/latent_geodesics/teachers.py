"""Simulated teachers: answer a query configuration with a demonstration near it."""
import numpy as np

from .data.arm import JOINT_NAMES as ARM_JOINTS, ArmSimulator
from .data.pendulum import JOINT_NAMES as PENDULUM_STATES, states_near


class Refused(Exception):
    """The teacher cannot demonstrate near this query; the message says why."""


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
