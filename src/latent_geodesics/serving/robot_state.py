"""The robot's latest joint state, for requests whose start is "where the robot is".

MoveIt's convention: an empty start state means the current one. The node feeds
every `sensor_msgs/JointState` in; a request takes the model's joints by name
(extra joints are ignored) from the latest message, refused when none arrived,
it is too old, or it lacks a joint or holds a non-finite value.
"""
import math
import threading

from latent_geodesics.errors import StateError

FUTURE_TOLERANCE = 0.5   # s a stamp may lie ahead of the receiving clock (clock skew)


class JointStateBuffer:
    def __init__(self, max_age, keep=None):
        """max_age: seconds (0 = any age); keep: the joint names worth remembering
        (the model's), None = all: a message naming 10^5 joints costs nothing."""
        self.max_age = float(max_age)
        self.keep = None if keep is None else frozenset(keep)
        self._joints = {}   # name -> (position, stamp, received)
        self._lock = threading.Lock()

    def update(self, names, positions, stamp, received=None):
        """stamp: seconds (the message's header stamp, or its arrival time if 0);
        received: the arrival time (default: stamp).

        Drivers may publish groups of joints in separate messages: merged by name,
        each joint with its own stamp. A malformed message (names and positions of
        different lengths, a name twice) or one stamped ahead of the clock is refused
        whole (StateError), so a pose is never built from parts of two messages."""
        names, received = list(names), stamp if received is None else received
        if len(names) != len(positions):
            raise StateError("joint_states message refused: %d names but %d positions"
                             % (len(names), len(positions)))
        if len(set(names)) != len(names):
            raise StateError("joint_states message refused: joint names repeat")
        if stamp > received + FUTURE_TOLERANCE:
            raise StateError("joint_states message refused: stamped %.2f s ahead of this "
                             "clock" % (stamp - received))
        kept = [(n, (float(p), float(stamp), float(received)))
                for n, p in zip(names, positions) if self.keep is None or n in self.keep]
        with self._lock:
            self._joints.update(kept)

    def age(self, joint_names, now):
        """Seconds since the oldest of these joints was last heard of; None if one never was."""
        with self._lock:
            times = [self._joints.get(n) for n in joint_names]
        if not times or any(t is None for t in times):
            return None
        return now - min(min(t[1], t[2]) for t in times)

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
        # Age by the older of stamp and arrival: a stamp from the future ages too.
        age = now - min(min(joints[n][1], joints[n][2]) for n in joint_names)
        if self.max_age > 0 and age > self.max_age:
            raise StateError("start is empty (the robot's current state) but the latest "
                             "joint_states is %.2f s old, more than joint_states_max_age %.2f s"
                             % (age, self.max_age))
        values = [joints[n][0] for n in joint_names]
        bad = [n for n, v in zip(joint_names, values) if not math.isfinite(v)]
        if bad:
            raise StateError("the robot's current state holds NaN or inf in %s" % bad)
        return list(joint_names), values


ALLOWED_START_TOLERANCE = 0.01   # rad, MoveIt's trajectory_execution/allowed_start_tolerance


def check_start(joint_names, first_point, current, tolerance=ALLOWED_START_TOLERANCE):
    """StateError unless the robot (current: positions in joint_names' order) is within
    tolerance of a trajectory's first point in every joint; 0 = no check."""
    if tolerance <= 0:
        return
    gaps = [abs(a - b) for a, b in zip(first_point, current)]
    worst = max(range(len(gaps)), key=gaps.__getitem__)
    if gaps[worst] > tolerance:
        raise StateError(
            "not executed: the robot is not at the trajectory's start: %s is %.4f rad from "
            "it (allowed_start_tolerance %.4f rad). Plan from the current state (an empty "
            "start) or move the robot there first" % (joint_names[worst], gaps[worst], tolerance))
