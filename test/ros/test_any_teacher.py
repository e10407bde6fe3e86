#!/usr/bin/env python3
"""rostest: active learning with system:=none and a teacher node of the test's own."""
import unittest

import rosnode
import rospy
import rostest

from latent_geodesics.msg import RoundMetrics
from latent_geodesics.srv import SelectQueries
from latent_geodesics.store import DemoStore


class TestAnyTeacher(unittest.TestCase):
    def test_a_round_with_a_foreign_teacher(self):
        rospy.init_node("test_any_teacher", anonymous=True)
        metrics = []
        rospy.Subscriber("/active_learner/metrics", RoundMetrics, metrics.append)
        deadline = rospy.Time.now() + rospy.Duration(400)
        while not metrics and rospy.Time.now() < deadline:
            rospy.sleep(0.5)
        self.assertTrue(metrics, "no round finished")
        m = metrics[-1]
        self.assertEqual(m.round, 1)
        self.assertEqual(m.demonstrations, 3)
        self.assertIn("round_1", m.model_dir)
        self.assertGreater(m.smoothness, 0.0)   # evaluated on pairs from the data itself
        self.assertNotIn("/demonstrator", rosnode.get_node_names())   # no simulator started
        store = DemoStore(rospy.get_param("~store"))
        self.assertEqual(len(store.demonstration_ids()), 3)   # beside the initial data
        rospy.wait_for_service("/active_learner/select_queries", timeout=60)
        res = rospy.ServiceProxy("/active_learner/select_queries", SelectQueries)(
            n=4, selector="combined")
        self.assertTrue(res.success, res.message)
        self.assertEqual(len(res.scores), 4)


if __name__ == "__main__":
    rostest.rosrun("latent_geodesics", "test_any_teacher", TestAnyTeacher)
