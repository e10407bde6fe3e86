"""How ~execute supervises a controller: the rules and their messages, free of ROS.

MoveIt's trajectory execution manager is the convention robot users know: a goal
that has not finished within allowed_execution_duration_scaling x its duration +
allowed_goal_duration_margin is cancelled and reported as timed out, whatever the
controller says later; a late success is not a success.
"""
import threading
from dataclasses import dataclass

from latent_geodesics.serving.robot_state import ALLOWED_START_TOLERANCE
from latent_geodesics.settings import setting, validate

# actionlib_msgs/GoalStatus's constants, named here: looking a value up among the
# message class's attributes finds unrelated ones equal to it (_has_header == 0).
GOAL_STATUS = ("PENDING", "ACTIVE", "PREEMPTED", "SUCCEEDED", "ABORTED", "REJECTED",
               "PREEMPTING", "RECALLING", "RECALLED", "LOST")
# States in which the controller no longer moves the robot for this goal.
STOPPED = frozenset({"PREEMPTED", "SUCCEEDED", "ABORTED", "REJECTED", "RECALLED", "LOST"})


def status_name(code):
    """GoalStatus's name of a status value; unknown values are named as numbers."""
    return GOAL_STATUS[code] if isinstance(code, int) and 0 <= code < len(GOAL_STATUS) \
        else "status %r" % (code,)


@dataclass(frozen=True)
class ExecutionSettings:
    """~execute's parameters: the controller, MoveIt's start check and tolerances, and
    MoveIt's trajectory execution monitoring (under MoveIt's names)."""
    controller_action: str = setting(
        "/position_joint_trajectory_controller/follow_joint_trajectory",
        "the robot's control_msgs/FollowJointTrajectory action")
    controller_wait: float = setting(5.0, "s to wait for the controller's action server",
                                     low=0.0, high=600.0)
    allowed_start_tolerance: float = setting(
        ALLOWED_START_TOLERANCE, "rad the robot may be off the first point (MoveIt's); "
        "0 = no check", low=0.0, high=3.2)
    path_tolerance: float = setting(0.0, "rad per joint while moving; 0 = the "
                                    "controller's own", low=0.0, high=3.2)
    goal_tolerance: float = setting(0.0, "rad per joint at the end; 0 = the controller's "
                                    "own", low=0.0, high=3.2)
    goal_time_tolerance: float = setting(0.5, "s after the trajectory's end for reaching "
                                         "goal_tolerance", low=0.0, high=600.0)
    execution_duration_monitoring: bool = setting(
        True, "cancel a goal not finished within scaling x duration + margin")
    allowed_execution_duration_scaling: float = setting(
        1.2, "x the motion's duration before a goal is timed out", low=1.0, high=100.0)
    allowed_goal_duration_margin: float = setting(
        0.5, "s added to the scaled duration before a goal is timed out", low=0.0,
        high=3600.0)
    cancel_wait: float = setting(2.0, "s to wait for the controller to confirm a cancel",
                                 low=0.0, high=60.0)

    def validate(self):
        return validate(self)

    def deadline(self, duration):
        """Seconds after sending by which the controller must have finished; None: never."""
        if not self.execution_duration_monitoring:
            return None
        return duration * self.allowed_execution_duration_scaling \
            + self.allowed_goal_duration_margin


def timed_out_message(duration, monitoring, status):
    return ("timed out: the controller did not finish the %.2f s motion within %.2f s "
            "(allowed_execution_duration_scaling %g, allowed_goal_duration_margin %g s); "
            "the controller's goal %s" % (
                duration, monitoring.deadline(duration),
                monitoring.allowed_execution_duration_scaling,
                monitoring.allowed_goal_duration_margin, cancel_outcome(status)))


def why_stopped(preempted):
    """A goal ends early on its client's cancel or, on both front ends, when a newer
    ~execute goal preempts it: one controller follows one motion, and the newest
    wins, as in actionlib's SimpleActionServer and ros2_control's
    joint_trajectory_controller. A preemption is named as such, a cancel as a cancel."""
    return "preempted by a new goal" if preempted else "cancelled"


def cancelled_message(status, preempted=False):
    return "%s; the controller's goal %s" % (why_stopped(preempted), cancel_outcome(status))


def not_sent_message(preempted=False):
    """A goal that ended early before anything reached the controller."""
    return "%s before execution" % why_stopped(preempted)


def cancel_outcome(status):
    """What a cancel achieved, as the controller reports it (never assumed)."""
    name = status_name(status)
    if name in ("PREEMPTED", "RECALLED"):
        return "was cancelled (%s)" % name
    if name in STOPPED:
        return "was already over (%s)" % name
    return ("is still %s: the controller did not confirm the cancel; the robot may still be "
            "moving, stop it at the controller" % name)


class NewestGoal:
    """One goal at a time, and the newest wins: actionlib's SimpleActionServer rule,
    which ~execute keeps on both front ends (ROS 2's ActionServer has no such rule; one
    controller follows one motion). A goal that arrives preempts the running one, which
    sees preempted() and ends; the newest then takes() the controller."""

    def __init__(self, poll):
        """poll: s between looks at a waiting goal's fate."""
        self.poll, self.newest = poll, None
        self.lock = threading.Lock()   # held by the goal that may use the controller

    def arrived(self, goal):
        self.newest = goal

    def preempted(self, goal):
        return self.newest is not goal

    def take(self, goal, gone):
        """Wait until the goal may use the controller (release() gives it back): False
        once a newer goal preempts it or gone() (cancelled, shutting down) meanwhile.
        Only the newest waits on, so a burst of goals holds one waiting thread."""
        while not self.lock.acquire(timeout=self.poll):
            if self.preempted(goal) or gone():
                return False
        return True

    def release(self):
        self.lock.release()


class ObstructionWatch:
    """MoveIt's trajectory execution monitoring of the robot's world: while a motion
    runs, every scene update checks the rest of it against the new scene; an object
    on it sets `stopped` (the front end then cancels the controller's goal at once)."""

    def __init__(self, service, clock):
        """service: the GeodesicService (its scene updates call on_scene); clock() -> s."""
        self.service, self.clock = service, clock
        self.running = None    # (the served result, when the controller took it)
        self.stopped = None    # why the motion must stop, once an object is on its rest
        service.scene_listeners.append(self.on_scene)

    def watch(self, result, started):
        self.stopped, self.running = None, (result, started)

    def done(self):
        self.running = None

    def on_scene(self, scene):
        running = self.running
        if running is None:
            return
        result, started = running
        elapsed = max(0.0, self.clock() - started)
        found = self.service.obstruction(result, elapsed)
        if found is not None and self.running is running:
            hit, at = found
            self.stopped = ("stopped: %s on the path at t = %.2f s (%s would reach it; scene "
                            "version %d, %.2f s into the motion)" % (
                                hit.object, at, hit.link, scene.version, elapsed))
