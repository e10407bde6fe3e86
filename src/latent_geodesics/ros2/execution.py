"""~/execute on ROS 2: plan a geodesic and run it through the robot's trajectory
controller, with the ROS 1 node's rules (ros/execution.py) and messages
(serving/execution.py).

The controller is any control_msgs/action/FollowJointTrajectory server
(controller_action): ros2_control's joint_trajectory_controller, most arm drivers.
Nothing is sent unless the robot's latest joint_states lie within
allowed_start_tolerance of the trajectory's first point (MoveIt's rule), checked again
just before sending, nor when the motion touches the scene as it is then. Cancelling
~/execute cancels the controller's goal; so does a goal not finished within
allowed_execution_duration_scaling x its duration + allowed_goal_duration_margin
(TIMED_OUT, MoveIt's execution monitoring), and a scene update that puts an object on
the rest of the motion (STOPPED; with `replan` the motion is planned again from where
the robot stopped). One goal runs at a time, and the newest wins, as on ROS 1: a goal
arriving while one runs preempts it (the controller's goal is cancelled, the running
goal ends "preempted by a new goal; ...") and then runs, as joint_trajectory_controller
replaces a running trajectory with a new one. The preempted goal ends ABORTED: ROS 2
has no PREEMPTED, and rcl_action lets a goal end CANCELED only after its own client's
cancel (rclpy's single-goal example and Nav2 abort a preempted goal too).
"""
import dataclasses
import threading
import time
import traceback

import rclpy
from action_msgs.msg import GoalStatus
from control_msgs.action import FollowJointTrajectory
from control_msgs.msg import JointTolerance
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.duration import Duration

from latent_geodesics.action import ExecuteGeodesic
from latent_geodesics.msg import Endpoint, GeodesicStats
from latent_geodesics.ros2.messages import trajectory_msg
from latent_geodesics.ros2.parameters import declare_settings
from latent_geodesics.serving.engine import RequestError
from latent_geodesics.serving.execution import (
    GOAL_STATUS,
    ExecutionSettings,
    NewestGoal,
    ObstructionWatch,
    cancelled_message,
    not_sent_message,
    status_name,
    timed_out_message,
)
from latent_geodesics.serving.robot_state import StateError

FEEDBACK_HZ = 10.0
POLL_S = 0.02          # s between looks at the scene watch, the cancel and the deadline
MAX_REPLANS = 3        # replans of one goal after objects arrived on its motion
REPLAN_SETTLE = 0.3    # s the controller has to bring the arm to rest before replanning
STOPPED, CANCELLED, TIMED_OUT = "stopped", "cancelled", "timed out"   # how a run ended early
Result = ExecuteGeodesic.Result

# ROS 2's action_msgs/GoalStatus in actionlib's names, which the core's messages use, so
# both front ends say the same. An unknown status is taken as still moving: the message
# then tells the user to stop the robot at the controller rather than claim it stopped.
STATUS = {GoalStatus.STATUS_UNKNOWN: "ACTIVE", GoalStatus.STATUS_ACCEPTED: "PENDING",
          GoalStatus.STATUS_EXECUTING: "ACTIVE", GoalStatus.STATUS_CANCELING: "PREEMPTING",
          GoalStatus.STATUS_SUCCEEDED: "SUCCEEDED", GoalStatus.STATUS_CANCELED: "PREEMPTED",
          GoalStatus.STATUS_ABORTED: "ABORTED"}


def actionlib_status(status):
    return GOAL_STATUS.index(STATUS.get(status, "ACTIVE"))


def wait(future, timeout):
    """True once the future is done (the node's other executor threads complete it)."""
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    return done.wait(timeout) or future.done()


def seconds(duration):
    return duration.sec + duration.nanosec / 1e9


def controller_goal(trajectory, settings):
    """The FollowJointTrajectory goal with ~/execute's tolerances (0: the controller's own)."""
    names = trajectory.joint_names
    goal = FollowJointTrajectory.Goal(trajectory=trajectory)
    goal.goal_time_tolerance = Duration(seconds=settings.goal_time_tolerance).to_msg()
    if settings.path_tolerance > 0:
        goal.path_tolerance = [JointTolerance(name=n, position=settings.path_tolerance)
                               for n in names]
    if settings.goal_tolerance > 0:
        goal.goal_tolerance = [JointTolerance(name=n, position=settings.goal_tolerance)
                               for n in names]
    return goal


def unsent(handle, preempted):
    """End a goal stopped before anything reached the controller: CANCELED on its
    client's cancel, else (preempted) ABORTED; the message says which, as ROS 1's."""
    out = Result(success=False, message=not_sent_message(preempted),
                 error_code=Result.NOT_SENT)
    if handle.is_cancel_requested:
        handle.canceled()
    else:
        handle.abort()
    return out


class Executor:
    def __init__(self, server, qos):
        """server: the GeodesicServer node, whose service plans and checks the start;
        qos: the service QoS of the action's and the controller client's services."""
        self.server = server
        self.settings = declare_settings(server, ExecutionSettings())
        self.goals = NewestGoal(POLL_S)
        self.handle, self.replanning = None, False
        group = ReentrantCallbackGroup()
        queues = dict(goal_service_qos_profile=qos, cancel_service_qos_profile=qos,
                      result_service_qos_profile=qos, callback_group=group)
        self.controller = ActionClient(server, FollowJointTrajectory,
                                       self.settings.controller_action, **queues)
        self.watch = ObstructionWatch(server.service, server.now)
        self.action = ActionServer(server, ExecuteGeodesic, "~/execute",
                                   execute_callback=self.execute,
                                   goal_callback=lambda goal: GoalResponse.ACCEPT,
                                   handle_accepted_callback=self.on_accepted,
                                   cancel_callback=lambda handle: CancelResponse.ACCEPT,
                                   **queues)

    def on_accepted(self, handle):
        """The newest goal preempts the one running: that one sees it (stop_requested),
        cancels the controller's goal and ends; then this one runs."""
        self.goals.arrived(handle)
        handle.execute()

    def execute(self, handle):
        if not self.goals.take(handle, lambda: handle.is_cancel_requested
                               or not rclpy.ok(context=self.server.context)):
            return unsent(handle, self.goals.preempted(handle))   # while waiting
        try:
            return self.execute_alone(handle)
        finally:
            self.goals.release()

    def execute_alone(self, handle):
        self.handle, started = handle, time.perf_counter()
        try:
            if self.stop_requested():   # cancelled or preempted while queued: no planning
                out = unsent(handle, self.goals.preempted(handle))
            else:
                out = self.plan_and_run(handle.request)
        except (RequestError, StateError) as e:
            out = self.refuse(str(e))
        except Exception as e:   # never let one goal take the node down
            self.server.get_logger().error("execute failed: %r\n%s"
                                           % (e, traceback.format_exc()))
            out = self.refuse("internal error: %s" % e)
        self.server.service.health.record(time.perf_counter() - started, out.success)
        return out

    def stop_requested(self):
        """The goal's client cancelled it, or a newer goal preempts it."""
        return self.handle.is_cancel_requested or self.goals.preempted(self.handle)

    def plan_and_run(self, goal):
        """Plan, check the start, run; with goal.replan, an object arriving on the motion
        makes it plan again from where the robot stopped (at most MAX_REPLANS times)."""
        for attempt in range(MAX_REPLANS + 1):
            self.replanning = goal.replan and attempt < MAX_REPLANS
            result = self.plan(goal)
            self.check_robot_at(result)
            out = self.run(result)
            if out is not None:
                return out
            goal.start = Endpoint()    # from the robot's current state
            time.sleep(REPLAN_SETTLE)  # the controller brings the arm to rest
        raise AssertionError("unreachable: the last attempt never replans")

    def end(self, outcome, out):
        """Set the goal's outcome (succeed, abort or canceled) and return its result."""
        getattr(self.handle, outcome)()
        return out

    def refuse(self, message):
        return self.end("abort", Result(success=False, message=message,
                                        error_code=Result.NOT_SENT))

    def feedback(self, state, elapsed=0.0, duration=0.0):
        self.handle.publish_feedback(ExecuteGeodesic.Feedback(
            state=state, time_from_start=float(elapsed), duration=float(duration)))

    def plan(self, goal):
        self.feedback("planning")
        return self.server.service.plan_execution(goal, self.stop_requested)

    def check_robot_at(self, result):
        self.server.service.check_robot_at(result, self.settings.allowed_start_tolerance)

    def check_scene(self, result):
        self.server.service.check_scene(result)

    def run(self, result):
        """Send, follow, finish: the action's result, or None when an object stopped the
        motion and the goal replans."""
        if self.stop_requested():
            return unsent(self.handle, self.goals.preempted(self.handle))
        wait_s = self.settings.controller_wait
        if not self.controller.wait_for_server(timeout_sec=wait_s):
            raise RequestError("not executed: no FollowJointTrajectory controller answers on "
                               "%s within %.1f s (set controller_action)"
                               % (self.settings.controller_action, wait_s))
        # The robot may have moved while the controller was awaited: MoveIt's start
        # check once more, at the last moment before anything is sent.
        self.check_robot_at(result)
        self.check_scene(result)
        trajectory = trajectory_msg(result)
        # Started before sending: the watch then checks a little more of the motion
        # than the controller has left, never less.
        started = self.server.now()
        self.watch.watch(result, started)
        try:
            goal = controller_goal(trajectory, self.settings)
            sent = self.controller.send_goal_async(goal)
            if not wait(sent, wait_s):
                raise RequestError("the controller on %s did not answer the goal within "
                                   "%.1f s; it may be moving the robot: check it"
                                   % (self.settings.controller_action, wait_s))
            goal = sent.result()
            if not goal.accepted:
                return self.finish(trajectory, result, GOAL_STATUS.index("REJECTED"), None)
            return self.follow(goal, trajectory, result, started)
        finally:
            self.watch.done()

    def follow(self, goal, trajectory, result, started):
        duration = seconds(trajectory.points[-1].time_from_start)
        deadline = self.settings.deadline(duration)
        answer, fed = goal.get_result_async(), 0.0
        while not wait(answer, POLL_S):
            elapsed = self.server.now() - started
            if self.watch.stopped is not None:
                self.server.get_logger().warning("~/execute: %s; cancelling the controller's "
                                                 "goal" % self.watch.stopped)
                state, reply = self.cancel(goal, answer)
                return self.finish(trajectory, result, state, reply, STOPPED, "%s (controller: "
                                   "%s)" % (self.watch.stopped, status_name(state)))
            if self.stop_requested() or not rclpy.ok(context=self.server.context):
                state, reply = self.cancel(goal, answer)
                return self.finish(trajectory, result, state, reply, CANCELLED,
                                   cancelled_message(state,
                                                     self.goals.preempted(self.handle)))
            if deadline is not None and elapsed > deadline:
                self.server.get_logger().error("~/execute: the controller did not finish "
                                               "within %.2f s; cancelling its goal" % deadline)
                state, reply = self.cancel(goal, answer)
                return self.finish(trajectory, result, state, reply, TIMED_OUT,
                                   timed_out_message(duration, self.settings, state))
            if elapsed - fed >= 1.0 / FEEDBACK_HZ:
                self.feedback("executing", elapsed, duration)
                fed = elapsed
        response = answer.result()
        return self.finish(trajectory, result, actionlib_status(response.status),
                           response.result)

    def cancel(self, goal, answer):
        """Cancel the controller's goal: (its status, its result) once confirmed, or its
        last known status and no result after cancel_wait."""
        goal.cancel_goal_async()
        if wait(answer, self.settings.cancel_wait):
            response = answer.result()
            return actionlib_status(response.status), response.result
        return actionlib_status(goal.status), None

    def finish(self, trajectory, result, state, reply, ended=None, message=None):
        """The action's result from the controller's (state: actionlib's status value;
        reply: its FollowJointTrajectory result or None), or from why the run ended
        early (ended, with its message). A stop ends the goal unless it replans."""
        out = Result(error_code=reply.error_code if reply is not None else Result.NOT_SENT,
                     error_string=reply.error_string if reply is not None else "",
                     trajectory=trajectory,
                     stats=GeodesicStats(**dataclasses.asdict(result.summary())))
        out.message = message or ""
        if ended == STOPPED:
            out.error_code = Result.STOPPED
            if self.replanning:
                self.feedback("replanning")
                return None
            return self.end("abort", out)
        if ended == CANCELLED:
            return self.end("canceled" if self.handle.is_cancel_requested else "abort", out)
        if ended == TIMED_OUT:   # whatever the controller says, it was late
            out.error_code = Result.TIMED_OUT
            return self.end("abort", out)
        if status_name(state) == "SUCCEEDED" and out.error_code == 0:
            out.success, out.message = True, "executed: %.2f s, %d points" % (
                seconds(trajectory.points[-1].time_from_start), len(trajectory.points))
            return self.end("succeed", out)
        out.message = "the controller did not finish the trajectory: %s, error_code %d %s" % (
            status_name(state), out.error_code, out.error_string)
        return self.end("abort", out)
