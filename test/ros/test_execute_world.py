#!/usr/bin/env python3
"""rostest: ~execute watches the robot's world (MoveIt's trajectory execution
monitoring). An object published on the rest of a running motion cancels the
controller's goal before the arm reaches it (STOPPED, "stopped: ..."); with replan
the motion is planned again from where the arm stopped and ends at the goal; an
object on the part already executed does not stop it. Every recorded joint_state
is checked against the objects by the independent dense check."""
import os
import threading
import unittest

import actionlib
import numpy as np
import rospy
import rostest
from actionlib_msgs.msg import GoalID
from sensor_msgs.msg import JointState
from world_objects import (
    NAMES,
    NODE,
    World,
    ball,
    fixture_poses,
    removal,
    trajectory_positions,
)

from latent_geodesics.msg import (
    Endpoint,
    ExecuteGeodesicAction,
    ExecuteGeodesicFeedback,
    ExecuteGeodesicGoal,
    ExecuteGeodesicResult,
)
from latent_geodesics.srv import GraphGeodesic

SCALING = 0.2      # slow enough that a scene update arrives long before the object
AHEAD = 0.6        # the object sits where the hand is this far along the motion
BEHIND = 0.1       # ... or this far, published once the arm is past BEHIND_AFTER
BEHIND_AFTER = 0.7
CONTROLLER = "/arm/controller"


def endpoint(q):
    return Endpoint(joint_names=NAMES, positions=list(map(float, q)))


class TestExecuteWorld(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rospy.init_node("test_execute_world", anonymous=True)
        cls.world = World()
        cls.execute = actionlib.SimpleActionClient(NODE + "/execute", ExecuteGeodesicAction)
        assert cls.execute.wait_for_server(rospy.Duration(120))
        rospy.wait_for_service(NODE + "/graph_geodesic", timeout=120)
        cls.graph = rospy.ServiceProxy(NODE + "/graph_geodesic", GraphGeodesic)
        data = np.load(os.path.join(rospy.get_param("~work_dir"), "fixture_data.npz"))["data"]
        cls.home, cls.goal = data[0], fixture_poses()[1]
        cls.lock = threading.Lock()
        cls.states, cls.cancels, cls.feedback = [], [], None
        rospy.Subscriber("/arm/joint_states", JointState, cls.on_state)
        rospy.Subscriber(CONTROLLER + "/follow_joint_trajectory/cancel", GoalID,
                         cls.cancels.append)
        rospy.Subscriber(NODE + "/execute/feedback", ExecuteGeodesicFeedback, cls.on_feedback)

    @classmethod
    def on_state(cls, msg):
        with cls.lock:
            cls.states.append([msg.position[msg.name.index(n)] for n in NAMES])

    @classmethod
    def on_feedback(cls, msg):
        cls.feedback = msg.feedback

    def setUp(self):
        """The arm at home, the scene empty, the records cleared."""
        for object_id in self.world.scene().object_ids:
            self.world.publish(removal(object_id))
        if np.abs(self.arm() - self.home).max() > 0.02:
            self.execute.send_goal(ExecuteGeodesicGoal(goal=endpoint(self.home)))
            self.assertTrue(self.execute.wait_for_result(rospy.Duration(300)))
            self.assertTrue(self.execute.get_result().success, self.execute.get_result().message)
        with self.lock:
            del self.states[:]
        del self.cancels[:]
        type(self).feedback = None   # the subscriber's callback sets the class's

    def arm(self):
        msg = rospy.wait_for_message("/arm/joint_states", JointState, timeout=10)
        return np.array([msg.position[msg.name.index(n)] for n in NAMES])

    def goals_received(self):
        return rospy.get_param(CONTROLLER + "/goals_received", 0)

    def planned(self):
        """The motion ~execute will send (the same request to ~graph_geodesic)."""
        answer = self.graph(start=endpoint(self.home), goal=endpoint(self.goal),
                            max_velocity_scaling_factor=SCALING,
                            max_acceleration_scaling_factor=SCALING)
        self.assertTrue(answer.success, answer.message)
        q = trajectory_positions(answer.trajectory)
        return q, answer.trajectory.points[-1].time_from_start.to_sec()

    def send(self, replan=False):
        self.execute.send_goal(ExecuteGeodesicGoal(
            goal=endpoint(self.goal), max_velocity_scaling_factor=SCALING,
            max_acceleration_scaling_factor=SCALING, replan=replan))

    def wait_executing(self, fraction, duration, timeout=120.0):
        """Until the controller has run this fraction of the motion."""
        deadline = rospy.get_time() + timeout
        while rospy.get_time() < deadline:
            f = type(self).feedback
            if f is not None and f.state == "executing" and f.time_from_start >= \
                    fraction * duration:
                return
            rospy.sleep(0.02)
        self.fail("~execute did not run %.0f%% of its motion" % (100 * fraction))

    def recorded(self):
        """The arm's joint_states since setUp: distinct rows, every 5th (the dense check
        interpolates between them)."""
        with self.lock:
            q = np.array(self.states)
        keep = np.r_[True, np.abs(np.diff(q, axis=0)).max(axis=1) > 1e-9]
        q = q[keep]
        return np.vstack([q[::5], q[-1:]])

    def test_1_an_object_ahead_stops_the_motion_before_it_is_reached(self):
        q, duration = self.planned()
        centre = self.world.hand_at(q[int(AHEAD * len(q))])
        self.assertTrue(self.world.dense(q, {"ahead": (centre, 0.05)}).collides)   # on it
        sent = self.goals_received()
        self.send()
        self.wait_executing(0.05, duration)
        self.world.publish(ball("ahead", centre, 0.05))
        self.assertTrue(self.execute.wait_for_result(rospy.Duration(120)))
        result = self.execute.get_result()
        self.assertFalse(result.success)
        self.assertEqual(result.error_code, ExecuteGeodesicResult.STOPPED)
        self.assertTrue(result.message.startswith("stopped: ahead on the path at t = "),
                        result.message)
        self.assertIn("PREEMPTED", result.message)   # the controller confirmed the cancel
        self.assertEqual(self.goals_received(), sent + 1)
        self.assertGreaterEqual(len(self.cancels), 1)
        rospy.sleep(0.5)
        stopped = self.arm()
        self.assertGreater(np.abs(stopped - self.goal).max(), 0.05)   # not at the goal
        rospy.sleep(0.3)
        self.assertLess(np.abs(self.arm() - stopped).max(), 1e-9)    # and not moving
        check = self.world.dense(self.recorded(), {"ahead": (centre, 0.05)})
        self.assertFalse(check.collides, check)
        self.assertGreater(check.clearance, 0.0)

    def test_2_with_replan_it_goes_around_and_ends_at_the_goal(self):
        q, duration = self.planned()
        centre = self.world.hand_at(q[int(AHEAD * len(q))])
        sent = self.goals_received()
        self.send(replan=True)
        self.wait_executing(0.05, duration)
        self.world.publish(ball("ahead", centre, 0.05))
        self.assertTrue(self.execute.wait_for_result(rospy.Duration(300)))
        result = self.execute.get_result()
        self.assertTrue(result.success, result.message)
        self.assertEqual(result.error_code, 0)
        self.assertGreaterEqual(len(self.cancels), 1)              # the first goal stopped
        self.assertEqual(self.goals_received(), sent + 2)          # then the replanned one
        self.assertEqual(result.stats.clearance_object, "ahead")
        self.assertGreater(result.stats.min_clearance, 0.0)
        rospy.sleep(0.3)
        self.assertLess(np.abs(self.arm() - self.goal).max(), 0.02)
        check = self.world.dense(self.recorded(), {"ahead": (centre, 0.05)})
        self.assertFalse(check.collides, check)

    def test_3_an_object_behind_the_arm_does_not_stop_it(self):
        q, duration = self.planned()
        centre = self.world.hand_at(q[int(BEHIND * len(q))])
        self.assertTrue(self.world.dense(q, {"behind": (centre, 0.04)}).collides)
        sent = self.goals_received()
        self.send()
        self.wait_executing(BEHIND_AFTER, duration)
        answer = self.world.publish(ball("behind", centre, 0.04))
        self.assertIn("behind", answer.object_ids)
        self.assertTrue(self.execute.wait_for_result(rospy.Duration(120)))
        result = self.execute.get_result()
        self.assertTrue(result.success, result.message)
        self.assertEqual(self.goals_received(), sent + 1)
        self.assertEqual(len(self.cancels), 0)
        rospy.sleep(0.3)
        self.assertLess(np.abs(self.arm() - self.goal).max(), 0.02)


if __name__ == "__main__":
    rostest.rosrun("latent_geodesics", "execute_world", TestExecuteWorld)
