"""The robot's latest joint state, for requests whose start is "where the robot is".

MoveIt's convention: an empty start state means the current one. The node feeds
every `sensor_msgs/JointState` in; a request takes the model's joints by name
(extra joints are ignored) from the latest message, refused when none arrived,
it is too old, or it lacks a joint or holds a non-finite value.
"""
import math
import threading


class StateError(ValueError):
    """No usable current state; the message says why."""


class JointStateBuffer:
    def __init__(self, max_age):
        self.max_age = float(max_age)   # seconds; 0 = any age
        self._joints = {}   # name -> (position, stamp)
        self._lock = threading.Lock()

    def update(self, names, positions, stamp):
        """stamp: seconds (the message's header stamp, or its arrival time if 0).

        Drivers may publish groups of joints in separate messages: merged by name,
        each joint with its own stamp."""
        with self._lock:
            self._joints.update((n, (float(p), float(stamp))) for n, p in zip(names, positions))

    def current(self, joint_names, now):
        """(joint_names, positions) of the latest state, in the order asked for."""
        with self._lock:
            joints = dict(self._joints)
        if not joints:
            raise StateError("start is empty (the robot's current state) but no "
                             "sensor_msgs/JointState has arrived on joint_states")
        missing = [n for n in joint_names if n not in joints]
        if missing:
            raise StateError("start is empty (the robot's current state) but joint_states "
                             "lacks joints %s" % missing)
        age = now - min(joints[n][1] for n in joint_names)
        if self.max_age > 0 and age > self.max_age:
            raise StateError("start is empty (the robot's current state) but the latest "
                             "joint_states is %.2f s old, more than joint_states_max_age %.2f s"
                             % (age, self.max_age))
        values = [joints[n][0] for n in joint_names]
        bad = [n for n, v in zip(joint_names, values) if not math.isfinite(v)]
        if bad:
            raise StateError("the robot's current state holds NaN or inf in %s" % bad)
        return list(joint_names), values
