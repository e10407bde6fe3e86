#!/usr/bin/env python3
"""rostest: geodesic services, the NN action, published trajectories, load, reload."""
import os
import shutil
import threading
import unittest

import actionlib
import numpy as np
import rospy
import rostest
from trajectory_msgs.msg import JointTrajectory

from latent_geodesics.msg import Endpoint, NNGeodesicAction, NNGeodesicGoal
from latent_geodesics.srv import (
    Decode,
    Encode,
    GeodesicLengths,
    GraphGeodesic,
    MagnificationFactor,
    Reload,
)

NODE = "/geodesic_server"


def proxy(name, srv_type, persistent=False):
    rospy.wait_for_service(NODE + "/" + name, timeout=120)
    return rospy.ServiceProxy(NODE + "/" + name, srv_type, persistent=persistent)


def latent(z):
    return Endpoint(latent=list(map(float, z)))


class TestGeodesics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rospy.init_node("test_geodesics", anonymous=True)
        cls.work = rospy.get_param("~work_dir")
        cls.model_dir = rospy.get_param("~model_dir")
        cls.graph = proxy("graph_geodesic", GraphGeodesic)
        cls.encode = proxy("encode", Encode)
        cls.decode = proxy("decode", Decode)
        cls.mf = proxy("magnification_factor", MagnificationFactor)
        cls.lengths = proxy("geodesic_lengths", GeodesicLengths)
        cls.reload = proxy("reload", Reload)
        cls.nn = actionlib.SimpleActionClient(NODE + "/nn_geodesic", NNGeodesicAction)
        assert cls.nn.wait_for_server(rospy.Duration(60))
        latents = np.load(os.path.join(cls.model_dir, "latents.npy"))
        cls.a, cls.b = latents[0], latents[-1]
        cls.names = list(cls.decode(latent=[0.0, 0.0]).joint_names)

    def test_graph_geodesic_between_latent_points(self):
        res = self.graph(start=latent(self.a), goal=latent(self.b))
        self.assertTrue(res.success, res.message)
        path = np.reshape(res.latent_path, (-1, res.latent_dim))
        np.testing.assert_allclose(path[0], self.a, atol=1e-6)
        np.testing.assert_allclose(path[-1], self.b, atol=1e-6)
        self.assertGreater(res.length, 0.0)
        self.assertLessEqual(res.length, res.straight_line_length + 1e-9)
        self.assertEqual(res.stats.method, "graph")
        self.assertGreater(res.stats.nodes_expanded, 0)
        self.assertEqual(len(res.trajectory.points), len(path))

    def test_graph_geodesic_between_joint_configurations_any_order(self):
        qa = list(self.decode(latent=list(self.a)).positions)
        qb = list(self.decode(latent=list(self.b)).positions)
        rev = list(reversed(self.names))
        res = self.graph(start=Endpoint(joint_names=self.names, positions=qa),
                         goal=Endpoint(joint_names=rev, positions=list(reversed(qb))))
        self.assertTrue(res.success, res.message)
        self.assertEqual(list(res.trajectory.joint_names), self.names)

    def test_published_trajectory(self):
        received = []
        sub = rospy.Subscriber(NODE + "/trajectory", JointTrajectory, received.append)
        rospy.sleep(0.5)
        qa = list(self.decode(latent=list(self.a)).positions)
        qb = list(self.decode(latent=list(self.b)).positions)
        res = self.graph(start=Endpoint(joint_names=self.names, positions=qa),
                         goal=Endpoint(joint_names=self.names, positions=qb), publish=True)
        self.assertTrue(res.success, res.message)
        deadline = rospy.Time.now() + rospy.Duration(10)
        while not received and rospy.Time.now() < deadline:
            rospy.sleep(0.05)
        sub.unregister()
        self.assertTrue(received, "no trajectory published")
        traj = received[-1]
        self.assertEqual(list(traj.joint_names), self.names)
        times = np.array([p.time_from_start.to_sec() for p in traj.points])
        q = np.array([p.positions for p in traj.points])
        self.assertTrue((np.diff(times) > 0).all())
        velocity = np.abs(np.diff(q, axis=0)) / np.diff(times)[:, None]
        self.assertLessEqual(velocity.max(), rospy.get_param(NODE + "/max_joint_velocity") + 1e-6)
        # Start and goal exactly as requested.
        self.assertLessEqual(np.abs(q[0] - qa).max(), 1e-9)
        self.assertLessEqual(np.abs(q[-1] - qb).max(), 1e-9)

    def test_graph_geodesic_bad_inputs(self):
        far = [1e3, 1e3]
        cases = [
            (latent([np.nan, 0.0]), latent(self.b), "NaN"),
            (latent([np.inf, 0.0]), latent(self.b), "NaN"),
            (latent([0.0, 0.0, 0.0]), latent(self.b), "multiple"),
            (Endpoint(), latent(self.b), "no sensor_msgs/JointState has arrived"),
            (latent(self.a), Endpoint(), "neither"),
            (Endpoint(latent=[0.0, 0.0], positions=[0.0] * 7), latent(self.b), "both"),
            (Endpoint(joint_names=["x"] + self.names[1:], positions=[0.0] * 7),
             latent(self.b), "unknown joint"),
            (Endpoint(joint_names=self.names[:6], positions=[0.0] * 6), latent(self.b),
             "missing"),
            (latent(self.a), latent(self.a), "same point"),
            (latent(far), latent(self.b), "far outside"),
        ]
        for start, goal, fragment in cases:
            res = self.graph(start=start, goal=goal)
            self.assertFalse(res.success, fragment)
            self.assertIn(fragment, res.message)
        self.assertTrue(self.graph(start=latent(self.a), goal=latent(self.b)).success)

    def test_geodesic_lengths_many_to_many(self):
        latents = np.load(os.path.join(self.model_dir, "latents.npy"))
        goals = [latent(z) for z in latents[[-1, 10, 20]]]
        res = self.lengths(starts=[latent(self.a), latent(latents[30])], goals=goals)
        self.assertTrue(res.success, res.message)
        self.assertEqual((res.rows, res.cols, len(res.lengths)), (2, 3, 6))
        self.assertTrue(np.isfinite(res.lengths).all() and min(res.lengths) > 0)
        # The served geodesic (shortcut) is not longer than its node path.
        served = self.graph(start=latent(self.a), goal=latent(self.b)).length
        # Edges are measured with n_samples points, served paths at the finer measure
        # resolution, which sees a little more of the data-aware metric.
        self.assertLessEqual(served, res.lengths[0] * 1.05)
        for bad_starts, bad_goals, fragment in (
                ([latent(self.a)], [], "at least one"),
                ([latent(self.a)], [goals[0], latent([np.nan, 0.0])], "goal 1"),
                ([], goals, "no sensor_msgs/JointState has arrived"),
                ([latent([1e3, 1e3])], goals, "far outside")):
            res = self.lengths(starts=bad_starts, goals=bad_goals)
            self.assertFalse(res.success, fragment)
            self.assertIn(fragment, res.message)

    def test_magnification_factor(self):
        res = self.mf(latent=[0.0, 0.0, 0.5, 0.5])
        self.assertTrue(res.success, res.message)
        self.assertEqual(len(res.values), 2)
        np.testing.assert_allclose(np.log(res.values), res.log_values, rtol=1e-6)
        for bad in ([], [0.0], [np.nan, 1.0]):
            self.assertFalse(self.mf(latent=bad).success)

    def nn_goal(self, **kw):
        goal = NNGeodesicGoal(start=latent(self.a), goal=latent(self.b), mode="finite-difference",
                              init="graph", max_iterations=100)
        for k, v in kw.items():
            setattr(goal, k, v)
        return goal

    def test_nn_action_feedback_and_result(self):
        feedback = []
        for mode in ("finite-difference", "jacobian"):
            self.nn.send_goal(self.nn_goal(mode=mode), feedback_cb=feedback.append)
            self.assertTrue(self.nn.wait_for_result(rospy.Duration(120)))
            res = self.nn.get_result()
            self.assertTrue(res.success, res.message)
            self.assertEqual(res.stats.method, "graph+nn")
            graph = self.graph(start=latent(self.a), goal=latent(self.b))
            self.assertLessEqual(res.length, graph.length * 1.0001)
        self.assertTrue(feedback)
        # ~feedback_every 5 (geodesics.test): every fifth iteration, each with a length.
        self.assertTrue(all(f.iteration % 5 == 0 and f.length > 0 for f in feedback))
        self.nn.send_goal(NNGeodesicGoal(start=latent(self.a), goal=latent(self.b)))
        self.assertTrue(self.nn.wait_for_result(rospy.Duration(60)))
        res = self.nn.get_result()   # every optional field default
        self.assertTrue(res.success, res.message)
        self.assertEqual(res.stats.method, "graph+polyline")
        self.assertLessEqual(res.length, res.straight_line_length + 1e-9)

    def test_nn_action_preemption(self):
        feedback = []
        self.nn.send_goal(self.nn_goal(max_iterations=100000, init="straight",
                                       mode="finite-difference"),
                          feedback_cb=feedback.append)
        deadline = rospy.Time.now() + rospy.Duration(30)
        while not feedback and rospy.Time.now() < deadline:
            rospy.sleep(0.02)
        self.nn.cancel_goal()
        self.assertTrue(self.nn.wait_for_result(rospy.Duration(120)))
        self.assertEqual(self.nn.get_state(), actionlib.GoalStatus.PREEMPTED)
        self.assertLess(self.nn.get_result().stats.iterations, 100000)

    def test_nn_action_bad_inputs(self):
        for goal, fragment in [(self.nn_goal(max_iterations=-1), "max_iterations"),
                               (self.nn_goal(max_iterations=10 ** 9), "max_iterations"),
                               (self.nn_goal(mode="newton"), "mode"),
                               (self.nn_goal(init="random"), "init"),
                               (self.nn_goal(goal=latent(self.a)), "same point"),
                               (self.nn_goal(start=latent([np.nan, 0])), "NaN")]:
            self.nn.send_goal(goal)
            self.assertTrue(self.nn.wait_for_result(rospy.Duration(120)))
            self.assertEqual(self.nn.get_state(), actionlib.GoalStatus.ABORTED)
            self.assertIn(fragment, self.nn.get_result().message)

    def mixed_calls(self, n_threads=8, calls=50, during=None):
        """n_threads x calls mixed requests; returns the list of failures."""
        latents = np.load(os.path.join(self.model_dir, "latents.npy"))
        reference = {}
        for i in range(5):
            res = self.graph(start=latent(latents[i]), goal=latent(latents[-1 - i]))
            reference[i] = res.length
        failures = []

        def worker(seed):
            graph = proxy("graph_geodesic", GraphGeodesic, persistent=True)
            decode, mf = proxy("decode", Decode), proxy("magnification_factor",
                                                       MagnificationFactor)
            for c in range(calls):
                i = (seed + c) % 5
                kind = c % 5
                if kind < 2:
                    res = graph(start=latent(latents[i]), goal=latent(latents[-1 - i]))
                    ok = res.success and abs(res.length - reference[i]) < 1e-9
                elif kind == 2:
                    res = decode(latent=list(latents[i]))
                    ok = res.success and len(res.positions) == 7
                elif kind == 3:
                    res = mf(latent=list(latents[i]))
                    ok = res.success and len(res.values) == 1 and res.values[0] > 0
                else:
                    res = graph(start=latent([np.nan, 0.0]), goal=latent(latents[i]))
                    ok = not res.success and "NaN" in res.message
                if not ok:
                    failures.append((seed, c, kind, res.message))

        threads = [threading.Thread(target=worker, args=(s,)) for s in range(n_threads)]
        for t in threads:
            t.start()
        if during:
            during()
        for t in threads:
            t.join(300)
        return failures

    def test_concurrent_mixed_calls(self):
        self.assertEqual(self.mixed_calls(), [])

    def test_reload_under_load_and_graph_cache(self):
        copy = os.path.join(self.work, "model_copy")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(self.model_dir, copy)   # with the served model's graph cache
        messages = []

        def swap():
            for directory in (copy, self.model_dir, copy, self.model_dir):
                res = self.reload(model_dir=directory)
                self.assertTrue(res.success, res.message)
                messages.append(res.message)

        # Same model in both directories: every answer must stay exactly right.
        self.assertEqual(self.mixed_calls(n_threads=4, calls=40, during=swap), [])
        self.assertTrue(all("loaded from cache" in m for m in messages), messages)
        # The copy's directory now holds another model: its cache must not be used.
        other = rospy.get_param("~model_dir_b")
        for name in ("weights.pt", "latents.npy", "model.yaml"):
            shutil.copy(os.path.join(other, name), os.path.join(copy, name))
        res = self.reload(model_dir=copy)
        self.assertTrue(res.success, res.message)
        self.assertIn("built", res.message)
        bad = self.reload(model_dir=os.path.join(self.work, "no_such_model"))
        self.assertFalse(bad.success)
        self.assertIn("old model keeps serving", bad.message)
        self.assertTrue(self.reload(model_dir=self.model_dir).success)


if __name__ == "__main__":
    rostest.rosrun("latent_geodesics", "test_geodesics", TestGeodesics)
