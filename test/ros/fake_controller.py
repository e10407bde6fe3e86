#!/usr/bin/env python3
"""A joint trajectory controller for the tests: serves control_msgs/
FollowJointTrajectory (~action), follows each goal's trajectory in time (linear
between its points) and publishes the arm's joint_states at 100 Hz. A cancel stops
the arm where it is. ~goals_received counts the goals that reached it.
Parameters: ~joint_names; ~initial (positions) or ~initial_npz (an .npz whose
`data` row 0 is the start)."""
import threading

import actionlib
import numpy as np
import rospy
from control_msgs.msg import (
    FollowJointTrajectoryAction,
    FollowJointTrajectoryFeedback,
    FollowJointTrajectoryResult,
)
from sensor_msgs.msg import JointState

from latent_geodesics.serving.trajectory import position_at


class FakeController:
    def __init__(self):
        self.names = list(rospy.get_param("~joint_names"))
        if rospy.has_param("~initial_npz"):
            self.position = np.load(rospy.get_param("~initial_npz"))["data"][0].astype(float)
        else:
            self.position = np.array(rospy.get_param("~initial"), dtype=float)
        self.lock = threading.Lock()
        self.received = 0
        self.state_pub = rospy.Publisher("joint_states", JointState, queue_size=10)
        self.server = actionlib.SimpleActionServer("~follow_joint_trajectory",
                                                   FollowJointTrajectoryAction, self.follow,
                                                   auto_start=False)
        self.server.start()
        self.timer = rospy.Timer(rospy.Duration(0.01), self.publish)

    def publish(self, _event):
        with self.lock:
            q = self.position.tolist()
        msg = JointState(name=self.names, position=q)
        msg.header.stamp = rospy.Time.now()
        self.state_pub.publish(msg)

    def follow(self, goal):
        self.received += 1
        rospy.set_param("~goals_received", self.received)
        traj = goal.trajectory
        if sorted(traj.joint_names) != sorted(self.names):
            self.server.set_aborted(FollowJointTrajectoryResult(
                error_code=FollowJointTrajectoryResult.INVALID_JOINTS,
                error_string="joints %s, not %s" % (traj.joint_names, self.names)))
            return
        order = [list(traj.joint_names).index(n) for n in self.names]
        times = [p.time_from_start.to_nsec() for p in traj.points]
        positions = [[p.positions[i] for i in order] for p in traj.points]
        started = rospy.get_time()
        rate = rospy.Rate(100)
        while not rospy.is_shutdown():
            if self.server.is_preempt_requested():
                self.server.set_preempted(FollowJointTrajectoryResult(
                    error_string="cancelled"))
                return
            elapsed = rospy.get_time() - started
            with self.lock:
                self.position = np.asarray(position_at(times, positions, elapsed))
            self.server.publish_feedback(FollowJointTrajectoryFeedback(joint_names=self.names))
            if elapsed * 1e9 >= times[-1]:
                break
            rate.sleep()
        self.server.set_succeeded(FollowJointTrajectoryResult(
            error_code=FollowJointTrajectoryResult.SUCCESSFUL))


if __name__ == "__main__":
    rospy.init_node("fake_controller")
    FakeController()
    rospy.spin()
