#!/usr/bin/env python3
"""rostest: trajectories a robot can execute, against a URDF and live joint_states."""
import os
import unittest

import actionlib
import numpy as np
import rospy
import rostest
from sensor_msgs.msg import JointState
from urdf_parser_py.urdf import URDF

from latent_geodesics.msg import Endpoint, NNGeodesicAction, NNGeodesicGoal
from latent_geodesics.srv import GraphGeodesic

NODE = "/geodesic_server"


def times_ns(traj):
    return np.array([p.time_from_start.to_nsec() for p in traj.points], dtype=np.int64)


class TestRobotTrajectories(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rospy.init_node("test_robot_trajectories", anonymous=True)
        rospy.wait_for_service(NODE + "/graph_geodesic", timeout=120)
        cls.graph = rospy.ServiceProxy(NODE + "/graph_geodesic", GraphGeodesic)
        cls.nn = actionlib.SimpleActionClient(NODE + "/nn_geodesic", NNGeodesicAction)
        assert cls.nn.wait_for_server(rospy.Duration(60))
        robot = URDF.from_xml_string(rospy.get_param("/robot_description"))
        joints = {j.name: j for j in robot.joints}
        cls.names = ["panda_joint%d" % i for i in range(1, 8)]
        cls.v_max = np.array([joints[n].limit.velocity for n in cls.names])
        cls.lower = np.array([joints[n].limit.lower for n in cls.names])
        cls.upper = np.array([joints[n].limit.upper for n in cls.names])
        cls.a_max = rospy.get_param(NODE + "/max_joint_acceleration")
        cls.step = rospy.get_param(NODE + "/max_joint_step")
        data = np.load(os.path.join(rospy.get_param("~work_dir"), "fixture_data.npz"))["data"]
        cls.poses = data[::131][:6]
        cls.state_pub = rospy.Publisher("/robot/joint_states", JointState, queue_size=10)

    def configuration(self, q):
        return Endpoint(joint_names=self.names, positions=list(map(float, q)))

    def publish_state(self, q, names=None, age=0.0, extra=True):
        msg = JointState(name=list(names or self.names), position=list(map(float, q)))
        if extra:   # a gripper joint the model does not know: ignored
            msg.name.append("panda_finger_joint1")
            msg.position.append(0.02)
        msg.header.stamp = rospy.Time.now() - rospy.Duration.from_sec(age)
        for _ in range(3):
            self.state_pub.publish(msg)
            rospy.sleep(0.1)

    def check_executable(self, res, qa, qb):
        self.assertTrue(res.success, res.message)
        traj = res.trajectory
        q = np.array([p.positions for p in traj.points])
        v = np.array([p.velocities for p in traj.points])
        a = np.array([p.accelerations for p in traj.points])
        self.assertLessEqual(np.abs(q[0] - qa).max(), 1e-9)
        self.assertLessEqual(np.abs(q[-1] - qb).max(), 1e-9)
        self.assertLessEqual(np.abs(np.diff(q, axis=0)).max(), self.step + 1e-12)
        dt = np.diff(times_ns(traj)) / 1e9         # the rounded times a controller gets
        self.assertTrue((dt > 0).all())
        self.assertLessEqual((np.abs(np.diff(q, axis=0)) / dt[:, None] / self.v_max).max(), 1.0)
        self.assertLessEqual((np.abs(v) / self.v_max).max(), 1.0)
        self.assertLessEqual(np.abs(a).max(), self.a_max)
        self.assertTrue(((q >= self.lower - 1e-9) & (q <= self.upper + 1e-9)).all())
        self.assertEqual(np.abs(v[[0, -1]]).max(), 0.0)
        return v

    def test_exact_endpoints_and_urdf_limits(self):
        fastest = 0.0
        for qa, qb in zip(self.poses[:-1], self.poses[1:]):
            res = self.graph(start=self.configuration(qa), goal=self.configuration(qb))
            v = self.check_executable(res, qa, qb)
            fastest = max(fastest, np.abs(v).max())
            self.assertGreater(res.stats.start_offset, 0.0)   # reported, not hidden
            self.assertEqual(res.stats.num_points, len(res.trajectory.points))
        self.assertGreater(fastest, 0.3)   # the URDF's limits, not the scalar 0.3 rad/s

    def test_stamp_zero_and_moveit_scaling(self):
        start, goal = self.configuration(self.poses[0]), self.configuration(self.poses[1])
        full = self.graph(start=start, goal=goal)
        self.assertTrue(full.success, full.message)
        self.assertEqual(full.trajectory.header.stamp, rospy.Time(0))   # start on arrival
        now = self.graph(start=start, goal=goal, stamp_now=True)
        self.assertGreater(now.trajectory.header.stamp.to_sec(), 0)
        slow = self.graph(start=start, goal=goal, max_velocity_scaling_factor=0.5,
                          max_acceleration_scaling_factor=0.5)
        self.assertTrue(slow.success, slow.message)
        v = np.abs([p.velocities for p in slow.trajectory.points])
        self.assertTrue((v <= 0.5 * self.v_max * (1 + 1e-6)).all())
        self.assertGreater(slow.stats.duration, 1.4 * full.stats.duration)
        self.nn.send_goal(NNGeodesicGoal(start=start, goal=goal, max_velocity_scaling_factor=2.0))
        self.nn.wait_for_result(rospy.Duration(60))
        self.assertIn("max_velocity_scaling_factor must be in [0.001, 1]",
                      self.nn.get_result().message)

    def test_start_from_joint_states(self):
        qa, qb = self.poses[0], self.poses[2]
        self.publish_state(qa)
        res = self.graph(start=Endpoint(), goal=self.configuration(qb))
        self.check_executable(res, qa, qb)
        goal = NNGeodesicGoal(goal=self.configuration(qb))   # every other field default
        self.nn.send_goal(goal)
        self.assertTrue(self.nn.wait_for_result(rospy.Duration(60)))
        result = self.nn.get_result()
        self.assertEqual(self.nn.get_state(), actionlib.GoalStatus.SUCCEEDED, result.message)
        self.check_executable(result, qa, qb)
        self.assertLessEqual(result.length, result.straight_line_length + 1e-9)

    def test_bad_joint_states_are_refused(self):
        qa, qb = self.poses[1], self.poses[3]
        cases = [
            (lambda: self.publish_state(qa, age=5.0), "old"),
            (lambda: self.publish_state(np.r_[qa[:6], np.nan]), "NaN"),
        ]
        for publish, fragment in cases:
            publish()
            res = self.graph(start=Endpoint(), goal=self.configuration(qb))
            self.assertFalse(res.success)
            self.assertIn(fragment, res.message)
        self.publish_state(qa)
        self.assertTrue(self.graph(start=Endpoint(), goal=self.configuration(qb)).success)

    def test_endpoints_outside_the_urdf_limits_are_refused(self):
        bad = self.poses[0].copy()
        bad[3] = 0.3          # panda_joint4's upper limit is -0.0698
        res = self.graph(start=self.configuration(bad), goal=self.configuration(self.poses[1]))
        self.assertFalse(res.success)
        self.assertIn("panda_joint4", res.message)
        self.assertIn("outside its limits", res.message)
        far = self.graph(start=self.configuration([1000.0] * 7),
                         goal=self.configuration(self.poses[1]))
        self.assertFalse(far.success)


if __name__ == "__main__":
    rostest.rosrun("latent_geodesics", "test_robot_trajectories", TestRobotTrajectories)
