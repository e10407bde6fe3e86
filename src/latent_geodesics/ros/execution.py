"""~execute: plan a geodesic and run it through the robot's trajectory controller.

The controller is any control_msgs/FollowJointTrajectory action server
(~controller_action): ros_control's joint_trajectory_controller, most arm drivers.
Nothing is sent unless the robot's latest joint_states lie within
~allowed_start_tolerance of the trajectory's first point (MoveIt's rule), checked
again just before sending;
cancelling ~execute cancels the controller's goal, and so does a new ~execute goal
arriving while one runs: SimpleActionServer preempts the running goal (it ends
PREEMPTED, "preempted by a new goal; ...") and then runs the new one, as
joint_trajectory_controller replaces a running trajectory. Parameters: ~controller_action,
~controller_wait, ~allowed_start_tolerance, ~path_tolerance, ~goal_tolerance,
~goal_time_tolerance, and MoveIt's execution monitoring: a goal not finished within
~allowed_execution_duration_scaling x its duration + ~allowed_goal_duration_margin
is cancelled and reported as timed out (config/geodesic_server.yaml).
"""
import dataclasses
import time
import traceback

import actionlib
import rospy
from actionlib_msgs.msg import GoalStatus
from control_msgs.msg import FollowJointTrajectoryAction, FollowJointTrajectoryGoal, JointTolerance

from latent_geodesics.msg import (
    Endpoint,
    ExecuteGeodesicAction,
    ExecuteGeodesicFeedback,
    ExecuteGeodesicResult,
    GeodesicStats,
)
from latent_geodesics.ros.action_server import SimpleActionServer
from latent_geodesics.serving.engine import RequestError
from latent_geodesics.serving.execution import (
    ExecutionSettings,
    ObstructionWatch,
    cancelled_message,
    not_sent_message,
    status_name,
    timed_out_message,
)
from latent_geodesics.serving.robot_state import StateError
from latent_geodesics.settings import read

FEEDBACK_HZ = 10.0
MAX_REPLANS = 3        # replans of one goal after objects arrived on its motion
REPLAN_SETTLE = 0.3    # s the controller has to bring the arm to rest before replanning
STOPPED = "stopped"    # run()'s answer when an object arrived on the motion


class Executor:
    def __init__(self, server):
        """server: the GeodesicServer, whose service plans and checks the start."""
        self.server = server
        self.settings = read(ExecutionSettings,
                             lambda name, default: rospy.get_param("~" + name, default))
        self.controller = actionlib.SimpleActionClient(self.settings.controller_action,
                                                       FollowJointTrajectoryAction)
        self.watch = ObstructionWatch(server.service, rospy.get_time)
        self.action = SimpleActionServer("~execute", ExecuteGeodesicAction,
                                         self.execute, auto_start=False)
        self.action.start()

    def execute(self, goal):
        if self.action.is_preempt_requested():   # cancelled while queued: no planning
            self.cancelled_before_sending()      # (a storm of cancelled goals stays cheap)
            return
        started, done = time.perf_counter(), False
        try:
            done = self.plan_and_run(goal)
        except (RequestError, StateError) as e:
            self.refuse(str(e))
        except Exception as e:   # never let one goal take the node down
            rospy.logerr("execute failed: %r", e)
            rospy.logdebug("%s", traceback.format_exc())
            self.refuse("internal error: %s" % e)
        self.server.service.health.record(time.perf_counter() - started, done)

    def plan_and_run(self, goal):
        """Plan, check the start, run; with goal.replan, an object arriving on the motion
        makes it plan again from where the robot stopped (at most MAX_REPLANS times)."""
        for attempt in range(MAX_REPLANS + 1):
            self.replanning = goal.replan and attempt < MAX_REPLANS
            result, plan = self.plan(goal)
            self.check_robot_at(result)
            done = self.run(plan, result)
            if done is not STOPPED or not self.replanning:
                return done is True
            goal.start = Endpoint()     # from the robot's current state
            rospy.sleep(REPLAN_SETTLE)  # the controller brings the arm to rest
        return False

    def preempted(self):
        """True when a newer goal waits: SimpleActionServer then requests the running
        goal's preemption, as a cancel does; the newer goal runs once this one ends."""
        return self.action.is_new_goal_available()

    def cancelled_before_sending(self):
        self.action.set_preempted(ExecuteGeodesicResult(
            success=False, message=not_sent_message(self.preempted()),
            error_code=ExecuteGeodesicResult.NOT_SENT))

    def refuse(self, message):
        self.action.set_aborted(ExecuteGeodesicResult(
            success=False, message=message, error_code=ExecuteGeodesicResult.NOT_SENT), message)

    def plan(self, goal):
        """(the service's result, the trajectory message to send)."""
        self.action.publish_feedback(ExecuteGeodesicFeedback(state="planning"))
        result = self.server.service.plan_execution(goal, self.action.is_preempt_requested)
        return result, self.server.trajectory_msg(result)

    def check_robot_at(self, result):
        self.server.service.check_robot_at(result, self.settings.allowed_start_tolerance)

    def controller_goal(self, trajectory):
        names = trajectory.joint_names
        goal = FollowJointTrajectoryGoal(trajectory=trajectory)
        goal.goal_time_tolerance = rospy.Duration.from_sec(self.settings.goal_time_tolerance)
        if self.settings.path_tolerance > 0:   # 0: the controller's own defaults
            goal.path_tolerance = [JointTolerance(name=n, position=self.settings.path_tolerance)
                                   for n in names]
        if self.settings.goal_tolerance > 0:
            goal.goal_tolerance = [JointTolerance(name=n, position=self.settings.goal_tolerance)
                                   for n in names]
        return goal

    def run(self, trajectory, result):
        """Send, follow, finish; True if the controller reports success in time."""
        if self.action.is_preempt_requested():
            self.cancelled_before_sending()
            return False
        if not self.controller.wait_for_server(rospy.Duration(self.settings.controller_wait)):
            raise RequestError("not executed: no FollowJointTrajectory controller answers on "
                               "%s within %.1f s (set ~controller_action)"
                               % (self.settings.controller_action, self.settings.controller_wait))
        # The robot may have moved while the controller was awaited: MoveIt's start
        # check once more, at the last moment before anything is sent.
        self.check_robot_at(result)
        self.check_scene(result)
        duration = trajectory.points[-1].time_from_start.to_sec()
        deadline = self.settings.deadline(duration)
        self.controller.send_goal(self.controller_goal(trajectory))
        started = rospy.get_time()
        self.watch.watch(result, started)
        try:
            return self.follow(trajectory, result, started, duration, deadline)
        finally:
            self.watch.done()

    def check_scene(self, result):
        self.server.service.check_scene(result)

    def follow(self, trajectory, result, started, duration, deadline):
        rate = rospy.Rate(FEEDBACK_HZ)
        while not self.controller.wait_for_result(rospy.Duration(1e-3)):
            elapsed = rospy.get_time() - started
            if self.watch.stopped is not None:
                rospy.logwarn("~execute: %s; cancelling the controller's goal",
                              self.watch.stopped)
                self.finish(trajectory, result, "%s (controller: %s)" % (
                    self.watch.stopped, status_name(self.cancel())), stopped=True)
                return STOPPED
            if self.action.is_preempt_requested() or rospy.is_shutdown():
                return self.finish(trajectory, result, cancelled_message(
                    self.cancel(), self.preempted()), preempted=True)
            if deadline is not None and elapsed > deadline:
                rospy.logerr("~execute: the controller did not finish within %.2f s; "
                             "cancelling its goal", deadline)
                return self.finish(trajectory, result, timed_out_message(
                    duration, self.settings, self.cancel()))
            self.action.publish_feedback(ExecuteGeodesicFeedback(
                state="executing", time_from_start=elapsed, duration=duration))
            rate.sleep()
        return self.finish(trajectory, result)

    def cancel(self):
        """Cancel the controller's goal; its status once confirmed, or after cancel_wait."""
        self.controller.cancel_goal()
        self.controller.wait_for_result(rospy.Duration(self.settings.cancel_wait))
        return self.controller.get_state()

    def finish(self, trajectory, result, ended=None, preempted=False, stopped=False):
        """ended: the message of a cancel, a stop or a time-out; else the controller's
        answer. A stop ends the action unless the goal replans (run's caller decides)."""
        state = self.controller.get_state()
        answer = self.controller.get_result()
        code = answer.error_code if answer is not None else ExecuteGeodesicResult.NOT_SENT
        detail = answer.error_string if answer is not None else ""
        out = ExecuteGeodesicResult(error_code=code, error_string=detail, trajectory=trajectory,
                                    stats=GeodesicStats(**dataclasses.asdict(result.summary())))
        if stopped:
            out.error_code, out.message = ExecuteGeodesicResult.STOPPED, ended
            if not self.replanning:
                self.action.set_aborted(out, out.message)
            else:
                self.action.publish_feedback(ExecuteGeodesicFeedback(state="replanning"))
        elif preempted:
            out.message = ended
            self.action.set_preempted(out, out.message)
        elif ended is not None:   # timed out: whatever the controller says, it was late
            out.error_code, out.message = ExecuteGeodesicResult.TIMED_OUT, ended
            self.action.set_aborted(out, out.message)
        elif state == GoalStatus.SUCCEEDED and code == 0:
            out.success, out.message = True, "executed: %.2f s, %d points" % (
                trajectory.points[-1].time_from_start.to_sec(), len(trajectory.points))
            self.action.set_succeeded(out, out.message)
        else:
            out.message = "the controller did not finish the trajectory: %s, error_code %d %s" \
                % (status_name(state), code, detail)
            self.action.set_aborted(out, out.message)
        return out.success
