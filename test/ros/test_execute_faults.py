#!/usr/bin/env python3
"""rostest: ~execute supervises its controller as MoveIt does (fault_controller.py).

A controller that appears late while the arm moves gets nothing (the start is checked
again just before sending); a controller that leaves the goal pending, never finishes,
answers late or is killed is cancelled at allowed_execution_duration_scaling x duration
+ allowed_goal_duration_margin and the result says TIMED_OUT; a cancel reports the
controller's goal status as it is, not as hoped."""
import os
import subprocess
import sys
import time
import unittest

import actionlib
import numpy as np
import rospy
import rostest
from actionlib_msgs.msg import GoalStatus
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState

from latent_geodesics.msg import Endpoint, ExecuteGeodesicAction, ExecuteGeodesicGoal

NODE = "/geodesic_server"
NAMES = ["panda_joint%d" % i for i in range(1, 8)]
CONTROLLER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fault_controller.py")


class TestExecuteFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rospy.init_node("test_execute_faults", anonymous=True)
        cls.execute = actionlib.SimpleActionClient(NODE + "/execute", ExecuteGeodesicAction)
        assert cls.execute.wait_for_server(rospy.Duration(120))
        cls.npz = os.path.join(rospy.get_param("~work_dir"), "fixture_data.npz")
        cls.goal = np.load(cls.npz)["data"][::97][3]
        cls.process = None

    def tearDown(self):
        self.stop_controller()

    def start_controller(self, behaviour, **params):
        rospy.set_param("/faulty/controller/ready", False)
        args = ["__name:=controller", "__ns:=/faulty", "_behaviour:=" + behaviour,
                "_initial_npz:=" + self.npz, "_joint_names:=%s" % NAMES]
        args += ["_%s:=%s" % item for item in params.items()]
        self.process = subprocess.Popen([sys.executable, CONTROLLER] + args)
        rospy.wait_for_message("/faulty/joint_states", JointState, timeout=30)
        self.wait_until_the_server_sees_joint_states()

    def wait_until_the_server_sees_joint_states(self):
        """The server's own subscription connects to a new publisher a moment after
        ours does: its diagnostics say when it has fresh joint_states."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = rospy.wait_for_message("/diagnostics", DiagnosticArray, timeout=10)
            for status in msg.status:
                ages = [kv.value for kv in status.values if kv.key == "joint_states age (s)"]
                if ages and ages[0] != "none" and float(ages[0]) < 0.5:
                    return
        self.fail("the server saw no fresh joint_states from the test controller")

    def wait_ready(self):
        deadline = time.monotonic() + 30
        while not rospy.get_param("/faulty/controller/ready", False):
            self.assertLess(time.monotonic(), deadline, "the test controller did not start")
            rospy.sleep(0.05)

    def stop_controller(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def send(self, **fields):
        self.execute.send_goal(ExecuteGeodesicGoal(
            goal=Endpoint(joint_names=NAMES, positions=list(map(float, self.goal))), **fields))

    def result(self, timeout=60):
        self.assertTrue(self.execute.wait_for_result(rospy.Duration(timeout)))
        return self.execute.get_result()

    def goals_received(self):
        return rospy.get_param("/faulty/controller/goals_received", 0)

    def wait_until_the_controller_has_the_goal(self, started):
        """Until the controller counts the goal; fails with ~execute's answer if it
        ended first (refused, say), or after two minutes."""
        while self.goals_received() == 0:
            if self.execute.wait_for_result(rospy.Duration(0.05)):
                self.fail("~execute ended before sending: %s" % self.execute.get_result())
            self.assertLess(time.monotonic() - started, 120, "no goal reached the controller")

    def timed_out(self, behaviour, **params):
        """Execute against a controller; the result and the seconds it took."""
        self.start_controller(behaviour, **params)
        self.wait_ready()
        started = time.monotonic()
        self.send()
        res = self.result()
        return res, time.monotonic() - started

    def assert_timed_out(self, res, took, status_words):
        self.assertFalse(res.success, res.message)
        self.assertEqual(res.error_code, res.TIMED_OUT, res.message)
        self.assertIn("timed out", res.message)
        self.assertIn(status_words, res.message)
        self.assertNotIn("_has_header", res.message)
        duration = res.trajectory.points[-1].time_from_start.to_sec()
        # planning + 1.2 x duration + 0.5 s + the 2 s cancel wait, and slack for a busy CPU
        self.assertLess(took, 1.2 * duration + 0.5 + 2.0 + 15.0)
        self.assertEqual(self.goals_received(), 1)

    def test_late_controller_gets_nothing_once_the_arm_moved(self):
        self.start_controller("late", hold=3.0, late=6.0, drift=0.25)
        self.send()
        res = self.result()
        self.wait_ready()
        self.assertFalse(res.success, res.message)
        self.assertEqual(res.error_code, res.NOT_SENT, res.message)
        self.assertIn("allowed_start_tolerance", res.message)
        self.assertEqual(self.goals_received(), 0)

    def test_pending_goal_times_out_and_its_status_is_named(self):
        res, took = self.timed_out("pending")
        self.assert_timed_out(res, took, "still PENDING")

    def test_controller_that_never_finishes_is_cancelled(self):
        res, took = self.timed_out("silent")
        self.assert_timed_out(res, took, "was cancelled (PREEMPTED)")

    def test_late_success_is_not_a_success(self):
        res, took = self.timed_out("tardy", tardy=1.5)
        self.assert_timed_out(res, took, "was already over (SUCCEEDED)")

    def test_killed_controller_times_out(self):
        self.start_controller("normal")
        self.wait_ready()
        started = time.monotonic()
        self.send(max_velocity_scaling_factor=0.2, max_acceleration_scaling_factor=0.2)
        self.wait_until_the_controller_has_the_goal(started)
        rospy.sleep(0.5)
        self.stop_controller()
        res = self.result()
        self.assert_timed_out(res, time.monotonic() - started, "still ACTIVE")

    def test_cancel_that_the_controller_ignores_is_reported_as_such(self):
        self.start_controller("deaf")
        self.wait_ready()
        self.send(max_velocity_scaling_factor=0.2, max_acceleration_scaling_factor=0.2)
        self.wait_until_the_controller_has_the_goal(time.monotonic())
        self.execute.cancel_goal()
        res = self.result()
        self.assertEqual(self.execute.get_state(), GoalStatus.PREEMPTED)
        self.assertIn("still ACTIVE", res.message)
        self.assertNotIn("was cancelled", res.message)


if __name__ == "__main__":
    rostest.rosrun("latent_geodesics", "execute_faults", TestExecuteFaults)
