#!/usr/bin/env python3
"""rostest: the geodesic server's encode/decode services through rospy proxies."""
import math
import unittest

import rospy
import rostest

from latent_geodesics.srv import Decode, Encode

NODE = "/geodesic_server"


def proxy(name, srv_type):
    rospy.wait_for_service(NODE + "/" + name, timeout=120)
    return rospy.ServiceProxy(NODE + "/" + name, srv_type, persistent=False)


class TestEncodeDecode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rospy.init_node("test_geodesic_server", anonymous=True)
        cls.encode = proxy("encode", Encode)
        cls.decode = proxy("decode", Decode)
        cls.names = cls.decode(latent=[0.0, 0.0]).joint_names

    def test_decode_gives_named_configurations(self):
        res = self.decode(latent=[0.0, 0.0, 0.5, -0.5])
        self.assertTrue(res.success, res.message)
        self.assertEqual(len(res.joint_names), 7)
        self.assertTrue(all(n.startswith("panda_joint") for n in res.joint_names))
        self.assertEqual(len(res.positions), 14)
        self.assertTrue(all(math.isfinite(p) for p in res.positions))

    def test_encode_decode_round_trip(self):
        q = list(self.decode(latent=[0.3, -0.2]).positions)
        enc = self.encode(joint_names=self.names, positions=q)
        self.assertTrue(enc.success, enc.message)
        self.assertEqual(enc.latent_dim, 2)
        back = self.decode(latent=enc.latent).positions
        err = max(abs(a - b) for a, b in zip(q, back))
        self.assertLess(err, 0.3)

    def test_encode_accepts_any_joint_order(self):
        q = list(self.decode(latent=[0.1, 0.1]).positions)
        reordered = list(reversed(self.names))
        in_model_order = self.encode(joint_names=self.names, positions=q).latent
        shuffled = self.encode(joint_names=reordered, positions=list(reversed(q))).latent
        for a, b in zip(in_model_order, shuffled):
            self.assertAlmostEqual(a, b, places=5)

    def test_bad_requests_get_clear_errors_and_node_keeps_serving(self):
        bad = [
            (self.decode, dict(latent=[0.0, 0.0, 0.0]), "multiple"),
            (self.decode, dict(latent=[float("nan"), 0.0]), "NaN"),
            (self.decode, dict(latent=[]), "empty"),
            (self.encode, dict(joint_names=["elbow"] + list(self.names[1:]),
                               positions=[0.0] * 7), "unknown joint"),
            (self.encode, dict(joint_names=list(self.names[:6]), positions=[0.0] * 6),
             "missing"),
            (self.encode, dict(joint_names=self.names, positions=[0.0] * 6),
             "6 positions for 7 joint names"),
            (self.encode, dict(joint_names=self.names, positions=[float("inf")] * 7), "NaN"),
        ]
        for call, kwargs, fragment in bad:
            res = call(**kwargs)
            self.assertFalse(res.success, kwargs)
            self.assertIn(fragment, res.message)
        self.assertTrue(self.decode(latent=[0.0, 0.0]).success)

    def test_the_same_bad_request_gets_the_same_text_as_on_ros2(self):
        # test/ros2/test_geodesic_server.py asserts these very texts through ROS 2.
        for latent, text in (([float("nan"), 0.0], "latent holds NaN or inf"),
                             ([0.0] * 3, "latent has 3 values, not a multiple of the "
                                         "dimension 2"),
                             ([], "latent is empty")):
            self.assertEqual(self.decode(latent=latent).message, text)


if __name__ == "__main__":
    rostest.rosrun("latent_geodesics", "test_geodesic_server", TestEncodeDecode)
