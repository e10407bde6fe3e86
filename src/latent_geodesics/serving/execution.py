"""How ~execute supervises a controller: the rules and their messages, free of ROS.

MoveIt's trajectory execution manager is the convention robot users know: a goal
that has not finished within allowed_execution_duration_scaling x its duration +
allowed_goal_duration_margin is cancelled and reported as timed out, whatever the
controller says later; a late success is not a success.
"""
from dataclasses import dataclass

from latent_geodesics.errors import ConfigError, is_number

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
class ExecutionMonitoring:
    """MoveIt's trajectory_execution parameters, under MoveIt's names."""
    execution_duration_monitoring: bool = True
    allowed_execution_duration_scaling: float = 1.2
    allowed_goal_duration_margin: float = 0.5   # s
    cancel_wait: float = 2.0   # s to wait for the controller to confirm a cancel

    def validate(self):
        for name, floor, ceiling in (("allowed_execution_duration_scaling", 1.0, 100.0),
                                     ("allowed_goal_duration_margin", 0.0, 3600.0),
                                     ("cancel_wait", 0.0, 60.0)):
            value = getattr(self, name)
            if not (is_number(value) and floor <= value <= ceiling):
                raise ConfigError("%s must be a number in [%g, %g], not %r"
                                  % (name, floor, ceiling, value))
        return self

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
