"""How ~execute supervises a controller: the rules and their messages, free of ROS.

MoveIt's trajectory execution manager is the convention robot users know: a goal
that has not finished within allowed_execution_duration_scaling x its duration +
allowed_goal_duration_margin is cancelled and reported as timed out, whatever the
controller says later; a late success is not a success.
"""
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


def cancelled_message(status):
    return "cancelled; the controller's goal %s" % cancel_outcome(status)


def cancel_outcome(status):
    """What a cancel achieved, as the controller reports it (never assumed)."""
    name = status_name(status)
    if name in ("PREEMPTED", "RECALLED"):
        return "was cancelled (%s)" % name
    if name in STOPPED:
        return "was already over (%s)" % name
    return ("is still %s: the controller did not confirm the cancel; the robot may still be "
            "moving, stop it at the controller" % name)


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
