#!/usr/bin/env python3
"""rostest: the automatic loop against the real nodes; refusals; bad selections."""
import unittest

import numpy as np
import rospy
import rostest

from latent_geodesics.learning.store import DemoStore
from latent_geodesics.msg import RoundMetrics
from latent_geodesics.srv import Decode, Demonstrate, SelectQueries


def proxy(name, srv_type):
    rospy.wait_for_service(name, timeout=120)
    return rospy.ServiceProxy(name, srv_type)


class TestActiveLearning(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rospy.init_node("test_active_learning", anonymous=True)
        cls.metrics = []
        cls.sub = rospy.Subscriber("/active_learner/metrics", RoundMetrics, cls.metrics.append)
        cls.decode = proxy("/geodesic_server/decode", Decode)
        cls.before = list(cls.decode(latent=[0.3, -0.2]).positions)
        cls.select = proxy("/active_learner/select_queries", SelectQueries)
        cls.demonstrate = proxy("/demonstrator/demonstrate", Demonstrate)

    def test_select_queries(self):
        res = self.select(n=4, selector="combined")
        self.assertTrue(res.success, res.message)
        q = np.reshape(res.positions, (4, len(res.joint_names)))
        self.assertTrue(np.isfinite(q).all())
        self.assertEqual(len(res.scores), 4)
        z = np.reshape(res.latent, (4, res.latent_dim))
        self.assertEqual(len(np.unique(np.round(z, 9), axis=0)), 4)
        for n, selector, fragment in [(0, "combined", "1..1000"), (5000, "", "1..1000"),
                                      (2, "best", "selector")]:
            bad = self.select(n=n, selector=selector)
            self.assertFalse(bad.success)
            self.assertIn(fragment, bad.message)
        self.assertTrue(self.select(n=1, selector="random").success)

    def test_demonstrator_answers_and_refuses(self):
        names = ["panda_joint%d" % i for i in range(1, 8)]
        home = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
        res = self.demonstrate(joint_names=names, positions=home)
        self.assertTrue(res.success, res.message)
        self.assertGreater(len(res.demonstration.points), 5)
        into_table = [0.0, 1.5, 0.0, -0.6, 0.0, 1.5, 0.8]
        res = self.demonstrate(joint_names=names, positions=into_table)
        self.assertFalse(res.success)
        self.assertIn("collision", res.message)
        res = self.demonstrate(joint_names=names, positions=home[:3] + [0.5] + home[4:])
        self.assertFalse(res.success)
        self.assertIn("joint limits", res.message)
        res = self.demonstrate(joint_names=["elbow"] + names[1:], positions=home)
        self.assertFalse(res.success)
        self.assertIn("joint names", res.message)

    def test_two_round_loop(self):
        deadline = rospy.Time.now() + rospy.Duration(500)
        while not any(m.round == 2 for m in self.metrics) and rospy.Time.now() < deadline:
            rospy.sleep(0.5)
        rounds = sorted({m.round for m in self.metrics})
        self.assertEqual(rounds[-1:], [2], "the loop did not finish two rounds")
        store = DemoStore(rospy.get_param("~store"))
        self.assertEqual(store.current_round(), (2, "done"))
        # The store grew by exactly the acknowledged demonstrations.
        answered = store.db.execute("SELECT COUNT(*) FROM queries WHERE status='answered'"
                                    ).fetchone()[0]
        stored = len(store.demonstration_ids())
        self.assertEqual(stored, answered)
        last = [m for m in self.metrics if m.round == 2][-1]
        self.assertEqual(last.total_demonstrations, stored)
        self.assertGreater(stored, 0)
        self.assertTrue(np.isfinite([last.smoothness, last.max_log_mf, last.held_out_rmse]).all())
        # The server now serves the retrained model.
        self.assertIn("round_2", last.model_dir)
        after = list(self.decode(latent=[0.3, -0.2]).positions)
        self.assertGreater(np.abs(np.subtract(after, self.before)).max(), 1e-6)


if __name__ == "__main__":
    rostest.rosrun("latent_geodesics", "test_active_learning", TestActiveLearning)
