#!/usr/bin/env python3
"""A FollowJointTrajectory controller that misbehaves, for ~execute's supervision tests.

Publishes the arm's joint_states at 100 Hz and serves ~follow_joint_trajectory with
actionlib's full ActionServer (a simple one cannot leave a goal pending). ~behaviour:
  late     its action server appears after ~late s; the arm holds still for ~hold s
           (while ~execute plans and checks the start), then drifts ~drift rad on the
           first joint; goals then succeed at once
  pending  never accepts a goal (it stays PENDING), ignores cancels
  silent   accepts, never finishes, honours a cancel
  deaf     accepts, never finishes, ignores cancels
  tardy    accepts, ignores cancels, succeeds ~tardy s after the motion's end
  normal   follows the trajectory in time (linear between points), honours a cancel
~goals_received counts the goals that reached it. ~joint_names; ~initial_npz.
"""
import threading

import actionlib
import numpy as np
import rospy
from control_msgs.msg import FollowJointTrajectoryAction, FollowJointTrajectoryResult
from sensor_msgs.msg import JointState

from latent_geodesics.serving.trajectory import position_at


class FaultController:
    def __init__(self):
        self.names = list(rospy.get_param("~joint_names"))
        self.position = np.load(rospy.get_param("~initial_npz"))["data"][0].astype(float)
        self.behaviour = rospy.get_param("~behaviour")
        self.lock = threading.Lock()
        self.received = 0
        rospy.set_param("~goals_received", 0)
        self.state_pub = rospy.Publisher("joint_states", JointState, queue_size=10)
        self.timer = rospy.Timer(rospy.Duration(0.01), self.publish)
        if self.behaviour == "late":
            hold = float(rospy.get_param("~hold", 0.0))
            rospy.sleep(hold)
            self.drift(float(rospy.get_param("~late")) - hold, float(rospy.get_param("~drift")))
        self.server = actionlib.ActionServer("~follow_joint_trajectory",
                                             FollowJointTrajectoryAction, self.on_goal,
                                             self.on_cancel, auto_start=False)
        self.server.start()
        rospy.set_param("~ready", True)

    def drift(self, seconds, distance):
        """Move the first joint by distance over seconds (the arm moving meanwhile)."""
        start, begun = self.position[0], rospy.get_time()
        while (elapsed := rospy.get_time() - begun) < seconds and not rospy.is_shutdown():
            with self.lock:
                self.position[0] = start + distance * elapsed / seconds
            rospy.sleep(0.01)

    def publish(self, _event):
        with self.lock:
            q = self.position.tolist()
        msg = JointState(name=self.names, position=q)
        msg.header.stamp = rospy.Time.now()
        self.state_pub.publish(msg)

    def on_goal(self, handle):
        self.received += 1
        rospy.set_param("~goals_received", self.received)
        if self.behaviour == "pending":
            return
        handle.set_accepted()
        if self.behaviour == "late":
            handle.set_succeeded(FollowJointTrajectoryResult())
        elif self.behaviour in ("tardy", "normal"):
            threading.Thread(target=getattr(self, self.behaviour), args=(handle,),
                             daemon=True).start()

    def on_cancel(self, handle):
        if self.behaviour in ("silent", "normal"):
            handle.set_canceled(FollowJointTrajectoryResult(error_string="cancelled"))

    def tardy(self, handle):
        end = handle.get_goal().trajectory.points[-1].time_from_start.to_sec()
        rospy.sleep(end + float(rospy.get_param("~tardy", 4.0)))
        handle.set_succeeded(FollowJointTrajectoryResult())

    def normal(self, handle):
        traj = handle.get_goal().trajectory
        order = [list(traj.joint_names).index(n) for n in self.names]
        times = [p.time_from_start.to_nsec() for p in traj.points]
        positions = [[p.positions[i] for i in order] for p in traj.points]
        started = rospy.get_time()
        while not rospy.is_shutdown() and handle.get_goal_status().status == 1:   # ACTIVE
            elapsed = rospy.get_time() - started
            with self.lock:
                self.position = np.asarray(position_at(times, positions, elapsed))
            if elapsed * 1e9 >= times[-1]:
                handle.set_succeeded(FollowJointTrajectoryResult())
                return
            rospy.sleep(0.01)


if __name__ == "__main__":
    rospy.init_node("controller")
    FaultController()
    rospy.spin()
