#!/usr/bin/env python3
"""rostest: ~execute through a FollowJointTrajectory controller (fake_controller.py):
the arm reaches the goal, a cancel stops it, a new goal preempts the running one, a
start off the robot is refused before anything is sent; and /diagnostics reports the server."""
import os
import unittest

import actionlib
import numpy as np
import rospy
import rostest
from actionlib_msgs.msg import GoalStatus
from control_msgs.msg import FollowJointTrajectoryAction
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState

from latent_geodesics.msg import Endpoint, ExecuteGeodesicAction, ExecuteGeodesicGoal

NODE = "/geodesic_server"
NAMES = ["panda_joint%d" % i for i in range(1, 8)]
# control_msgs 1.5.2's FollowJointTrajectoryAction, as every ROS 1 controller has it.
UPSTREAM_MD5 = "bc4f9b743838566551c0390c65f1a248"


class TestExecute(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rospy.init_node("test_execute", anonymous=True)
        cls.execute = actionlib.SimpleActionClient(NODE + "/execute", ExecuteGeodesicAction)
        assert cls.execute.wait_for_server(rospy.Duration(120))
        data = np.load(os.path.join(rospy.get_param("~work_dir"), "fixture_data.npz"))["data"]
        cls.poses = data[::97][1:8]

    def arm(self):
        msg = rospy.wait_for_message("/arm/joint_states", JointState, timeout=10)
        return np.array([msg.position[msg.name.index(n)] for n in NAMES])

    def goals_received(self):
        return rospy.get_param("/arm/controller/goals_received", 0)

    def run_to(self, goal, **fields):
        self.execute.send_goal(ExecuteGeodesicGoal(
            goal=Endpoint(joint_names=NAMES, positions=list(map(float, goal))), **fields))
        self.assertTrue(self.execute.wait_for_result(rospy.Duration(120)))
        return self.execute.get_result()

    def test_1_executes_from_the_current_state_to_the_goal(self):
        for goal in self.poses[:2]:
            res = self.run_to(goal)
            self.assertTrue(res.success, res.message)
            self.assertEqual(res.error_code, 0)
            self.assertEqual(res.trajectory.header.stamp, rospy.Time(0))
            velocity = np.array([p.velocities for p in res.trajectory.points])
            self.assertLessEqual(np.abs(velocity[:, 0]).max(), 0.2 + 1e-9)   # MoveIt's limit
            rospy.sleep(0.2)
            self.assertLess(np.abs(self.arm() - goal).max(), 0.02)

    def test_2_cancel_stops_the_arm(self):
        before = self.arm()
        goal = self.poses[4]
        self.execute.send_goal(ExecuteGeodesicGoal(
            goal=Endpoint(joint_names=NAMES, positions=list(map(float, goal))),
            max_velocity_scaling_factor=0.1, max_acceleration_scaling_factor=0.1))
        rospy.sleep(1.5)
        self.execute.cancel_goal()
        self.assertTrue(self.execute.wait_for_result(rospy.Duration(30)))
        self.assertEqual(self.execute.get_state(), GoalStatus.PREEMPTED)
        self.assertIn("cancelled", self.execute.get_result().message)
        stopped = self.arm()
        rospy.sleep(0.5)
        self.assertLess(np.abs(self.arm() - stopped).max(), 1e-9)   # not moving any more
        self.assertGreater(np.abs(stopped - before).max(), 1e-4)    # it had moved
        self.assertGreater(np.abs(stopped - goal).max(), 0.05)      # and is not at the goal

    def test_2b_a_new_goal_preempts_the_running_one(self):
        """As SimpleActionServer does, and the ROS 2 node too: the running goal ends
        PREEMPTED once the controller confirmed its cancel; the new one runs from
        where the arm stopped."""
        before, goal, sent = self.arm(), self.poses[4], self.goals_received()
        self.execute.send_goal(ExecuteGeodesicGoal(
            goal=Endpoint(joint_names=NAMES, positions=list(map(float, goal))),
            max_velocity_scaling_factor=0.1, max_acceleration_scaling_factor=0.1))
        deadline = rospy.get_time() + 60
        while np.abs(self.arm() - before).max() < 1e-3:   # until the arm moves
            self.assertLess(rospy.get_time(), deadline, self.execute.get_goal_status_text())
        other = actionlib.SimpleActionClient(NODE + "/execute", ExecuteGeodesicAction)
        self.assertTrue(other.wait_for_server(rospy.Duration(30)))
        other.send_goal(ExecuteGeodesicGoal(
            goal=Endpoint(joint_names=NAMES, positions=list(map(float, before)))))
        self.assertTrue(self.execute.wait_for_result(rospy.Duration(60)))
        self.assertEqual(self.execute.get_state(), GoalStatus.PREEMPTED)
        self.assertEqual(self.execute.get_result().message, "preempted by a new goal; the "
                         "controller's goal was cancelled (PREEMPTED)")
        self.assertTrue(other.wait_for_result(rospy.Duration(120)))
        res = other.get_result()
        self.assertTrue(res.success, res.message)
        self.assertEqual(self.goals_received(), sent + 2)
        rospy.sleep(0.2)
        self.assertLess(np.abs(self.arm() - before).max(), 0.02)   # at the new goal
        start = np.array(res.trajectory.points[0].positions)
        self.assertGreater(np.abs(start - before).max(), 1e-3)      # from where it stopped
        self.assertGreater(np.abs(start - goal).max(), 0.05)

    def test_3_start_off_the_robot_is_refused_before_sending(self):
        sent = self.goals_received()
        here = self.arm()
        start = here.copy()
        start[2] += 0.05
        res = self.run_to(self.poses[5], start=Endpoint(joint_names=NAMES,
                                                        positions=list(map(float, start))))
        self.assertFalse(res.success)
        self.assertEqual(res.error_code, res.NOT_SENT)
        self.assertIn("panda_joint3 is 0.05", res.message)
        self.assertIn("allowed_start_tolerance", res.message)
        self.assertEqual(self.goals_received(), sent)
        self.assertLess(np.abs(self.arm() - here).max(), 1e-9)

    def test_4_bad_goal_is_refused_and_the_node_serves_on(self):
        sent = self.goals_received()
        res = self.run_to([float("nan")] * 7)
        self.assertFalse(res.success)
        self.assertEqual(self.goals_received(), sent)
        res = self.run_to(self.poses[6])
        self.assertTrue(res.success, res.message)

    def test_5_vendored_messages_match_upstream(self):
        self.assertEqual(FollowJointTrajectoryAction._md5sum, UPSTREAM_MD5)

    def test_6_diagnostics_report_the_server(self):
        deadline = rospy.get_time() + 10
        while rospy.get_time() < deadline:
            msg = rospy.wait_for_message("/diagnostics", DiagnosticArray, timeout=10)
            found = [s for s in msg.status if "geodesic server" in s.name]
            if found:
                break
        self.assertTrue(found)
        values = {kv.key: kv.value for kv in found[0].values}
        self.assertIn("fixture_model", values["model"])
        self.assertEqual(values["device"], "cpu")
        self.assertGreater(int(values["graph nodes"]), 100)
        self.assertLess(float(values["joint_states age (s)"]), 1.0)
        self.assertGreaterEqual(int(values["requests"]), 6)      # the goals above
        self.assertGreaterEqual(int(values["failures since start"]), 2)   # tests 3 and 4


if __name__ == "__main__":
    rostest.rosrun("latent_geodesics", "execute", TestExecute)
