#!/usr/bin/env python3
"""rostest: the robot's world on ROS 1. Objects arrive as MoveIt sends them
(moveit_msgs/CollisionObject on /collision_object, PlanningScene on /planning_scene,
in the root frame or a tf2 frame) or from the ~scene file; ~scene and ~scene_markers
show them; served motions go around them (checked by the independent dense check),
and a goal inside one is refused."""
import unittest

import numpy as np
import rospy
import rostest
import tf2_ros
import yaml
from geometry_msgs.msg import TransformStamped
from moveit_msgs.msg import CollisionObject, PlanningScene
from rosgraph_msgs.msg import Log
from scipy.spatial.transform import Rotation
from visualization_msgs.msg import Marker, MarkerArray
from world_objects import (
    NAMES,
    NODE,
    RADIUS,
    ROOT,
    World,
    ball,
    box,
    fixture_poses,
    removal,
    trajectory_positions,
    wait_for_subscriber,
)

from latent_geodesics.msg import Endpoint
from latent_geodesics.srv import GraphGeodesic
from latent_geodesics.world.scene import Scene

SHELF = ([-0.8, 0.0, 0.4], [[0, 0, 0], [0, 0, 0.3]])   # test/ros/scene.yaml


def endpoint(q):
    return Endpoint(joint_names=NAMES, positions=list(map(float, q)))


class TestWorld(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rospy.init_node("test_world", anonymous=True)
        cls.world = World()
        rospy.wait_for_service(NODE + "/graph_geodesic", timeout=120)
        cls.graph = rospy.ServiceProxy(NODE + "/graph_geodesic", GraphGeodesic)
        cls.scenes = rospy.Publisher("/planning_scene", PlanningScene, queue_size=10)
        wait_for_subscriber(cls.scenes)
        cls.warnings = []
        cls.rosout = rospy.Subscriber("/rosout", Log, cls.warnings.append)
        cls.poses = fixture_poses()

    def ask(self, a, b):
        return self.graph(start=endpoint(a), goal=endpoint(b))

    def publish_scene(self, msg):
        version = self.world.scene().version
        self.scenes.publish(msg)
        return self.world.wait_scene(lambda a: a.version > version)

    def markers(self, expected=()):
        """The latched ~scene_markers as a new subscriber gets them, once they draw the
        objects expected, no more and no fewer (else the latest after 10 s): the server
        republishes them just after its scene changed, so a scene answer can come first."""
        deadline = rospy.get_time() + 10
        while True:
            got = rospy.wait_for_message(NODE + "/scene_markers", MarkerArray, timeout=10)
            drawn = {m.ns for m in got.markers if m.action == Marker.ADD}
            if drawn == set(expected) or rospy.get_time() > deadline:
                return got
            rospy.sleep(0.05)

    def test_1_the_scene_file_is_loaded_at_start(self):
        answer = self.world.scene()
        self.assertTrue(answer.success, answer.message)
        self.assertEqual(answer.frame_id, ROOT)
        self.assertEqual(list(answer.object_ids), ["shelf"])
        self.assertGreaterEqual(answer.version, 1)
        self.assertGreater(answer.updated, 0.0)
        shelf = Scene.from_yaml(yaml.safe_load(answer.objects_yaml), ROOT).objects["shelf"]
        np.testing.assert_allclose(shelf.pose[:3, 3], SHELF[0])
        np.testing.assert_allclose([s.pose[:3, 3] for s in shelf.shapes], SHELF[1])
        drawn = [m for m in self.markers(["shelf"]).markers if m.ns == "shelf"]
        self.assertEqual(len(drawn), 2)
        self.assertEqual({m.type for m in drawn}, {Marker.CUBE})
        self.assertAlmostEqual(max(m.pose.position.z for m in drawn), 0.7)

    def test_2_a_whole_scene_replaces_the_world_and_a_diff_adds_and_moves(self):
        whole = PlanningScene(is_diff=False)
        whole.world.collision_objects = [box("crate", [0.0, -0.9, 0.2], [0.2, 0.2, 0.2])]
        before = self.world.scene().version
        answer = self.publish_scene(whole)
        self.assertEqual(list(answer.object_ids), ["crate"])   # the shelf is gone
        self.assertGreater(answer.version, before)
        diff = PlanningScene(is_diff=True)
        moved = CollisionObject(id="crate", operation=CollisionObject.MOVE)
        moved.header.frame_id = ROOT
        moved.pose.position.x, moved.pose.position.y, moved.pose.position.z = 0.0, -0.9, 0.5
        moved.pose.orientation.w = 1.0
        diff.world.collision_objects = [box("bin", [0.0, 0.9, 0.1], [0.3, 0.3, 0.2]), moved]
        answer = self.publish_scene(diff)
        self.assertEqual(list(answer.object_ids), ["bin", "crate"])
        objects = Scene.from_yaml(yaml.safe_load(answer.objects_yaml), ROOT).objects
        np.testing.assert_allclose(objects["crate"].pose[:3, 3], [0.0, -0.9, 0.5])
        np.testing.assert_allclose(objects["bin"].shapes[0].dimensions, [0.3, 0.3, 0.2])
        drawn = {m.ns: m for m in self.markers(["bin", "crate"]).markers
                 if m.action == Marker.ADD}
        self.assertEqual(sorted(drawn), ["bin", "crate"])
        self.assertAlmostEqual(drawn["crate"].pose.position.z, 0.5)
        answer = self.publish_scene(PlanningScene(is_diff=False))
        self.assertEqual(list(answer.object_ids), [])

    def test_3_scene_reports_objects_that_read_back(self):
        start = self.world.scene().version
        self.world.publish(ball("ball_a", [0.1, 0.8, 0.3], 0.05))
        answer = self.world.publish(box("box_b", [-0.2, -0.8, 0.1], [0.1, 0.2, 0.3]))
        self.assertEqual(answer.version, start + 2)
        self.assertEqual(answer.frame_id, ROOT)
        self.assertEqual(list(answer.object_ids), ["ball_a", "box_b"])
        back = Scene.from_yaml(yaml.safe_load(answer.objects_yaml), ROOT)
        self.assertEqual(back.object_ids, ["ball_a", "box_b"])
        self.assertEqual(back.objects["ball_a"].shapes[0].kind, "sphere")
        np.testing.assert_allclose(back.objects["ball_a"].shapes[0].dimensions, [0.05])
        np.testing.assert_allclose(back.objects["box_b"].pose[:3, 3], [-0.2, -0.8, 0.1])
        drawn = {m.ns: m for m in self.markers(["ball_a", "box_b"]).markers
                 if m.action == Marker.ADD}
        self.assertEqual(drawn["ball_a"].type, Marker.SPHERE)
        self.assertAlmostEqual(drawn["ball_a"].scale.x, 0.1)
        self.assertEqual(drawn["box_b"].header.frame_id, ROOT)
        for object_id in ("ball_a", "box_b"):
            answer = self.world.publish(removal(object_id))
        self.assertEqual(list(answer.object_ids), [])
        self.assertEqual(answer.version, start + 4)

    def test_4_unknown_frame_is_refused_a_tf_frame_is_transformed(self):
        before = self.world.scene().version
        self.world.objects.publish(ball("lost_ball", [0.3, 0.0, 0.3], frame="nowhere"))
        deadline = rospy.get_time() + 20
        while rospy.get_time() < deadline and not self.warned("lost_ball"):
            rospy.sleep(0.1)
        self.assertIn("nowhere", self.warned("lost_ball"))
        self.assertNotIn("internal error", self.warned("lost_ball"))
        answer = self.world.scene()
        self.assertNotIn("lost_ball", answer.object_ids)
        self.assertEqual(answer.version, before)   # nothing applied
        frame = TransformStamped()
        frame.header.stamp, frame.header.frame_id = rospy.Time.now(), ROOT
        frame.child_frame_id = "tray"
        frame.transform.translation.x, frame.transform.translation.y = 0.1, -0.7
        frame.transform.translation.z = 0.2
        q = Rotation.from_euler("z", 90, degrees=True).as_quat()
        r = frame.transform.rotation
        r.x, r.y, r.z, r.w = q
        broadcaster = tf2_ros.StaticTransformBroadcaster()
        broadcaster.sendTransform(frame)
        answer = self.world.publish(ball("tray_ball", [0.2, 0.0, 0.05], 0.03, frame="tray"))
        self.assertEqual(list(answer.object_ids), ["tray_ball"])
        placed = Scene.from_yaml(yaml.safe_load(answer.objects_yaml), ROOT).objects
        # (0.2, 0, 0.05) in the tray frame, turned 90 degrees about z: (0, 0.2, 0.05)
        np.testing.assert_allclose(placed["tray_ball"].pose[:3, 3], [0.1, -0.5, 0.25],
                                   atol=1e-6)
        self.world.publish(removal("tray_ball"))

    def warned(self, object_id):
        found = [m.msg for m in self.warnings if m.level == Log.WARN and object_id in m.msg]
        return found[0] if found else ""

    def test_5_an_object_on_the_motion_changes_the_next_answer(self):
        a, b = self.poses[1], self.poses[2]
        first = self.ask(a, b)
        self.assertTrue(first.success, first.message)
        q = trajectory_positions(first.trajectory)
        centre = self.world.hand_at(q[len(q) // 2])   # where the hand passes mid-way
        objects = {"ball": (centre, RADIUS)}
        crossed = self.world.dense(q, objects)
        self.assertTrue(crossed.collides)        # the check is not vacuous
        self.assertLess(crossed.clearance, -0.03)
        answer = self.world.publish(ball("ball", centre))
        self.assertEqual(list(answer.object_ids), ["ball"])
        try:
            self.around_the_ball(a, b, q, objects)
        finally:
            self.world.publish(removal("ball"))
        again = self.ask(a, b)
        self.assertTrue(again.success, again.message)
        np.testing.assert_allclose(trajectory_positions(again.trajectory), q, atol=1e-9)
        self.assertEqual(again.stats.clearance_object, "")

    def around_the_ball(self, a, b, q, objects):
        around = self.ask(a, b)
        self.assertTrue(around.success, around.message)
        q_around = trajectory_positions(around.trajectory)
        check = self.world.dense(q_around, objects)
        self.assertFalse(check.collides, check)
        self.assertGreater(check.clearance, 0.0)
        self.assertGreater(around.stats.min_clearance, 0.0)
        self.assertLess(around.stats.min_clearance, 0.5)
        self.assertIn(around.stats.clearance_link, self.world.body.link_names)
        self.assertEqual(around.stats.clearance_object, "ball")
        np.testing.assert_allclose(q_around[[0, -1]], q[[0, -1]], atol=1e-6)   # same ends

    def test_6_a_goal_inside_an_object_is_refused_and_serving_goes_on(self):
        a, b, c = self.poses[1], self.poses[2], self.poses[6]
        self.world.publish(ball("block", self.world.hand_at(b)))
        refused = self.ask(a, b)
        self.assertFalse(refused.success)
        self.assertIn("the goal pose collides", refused.message)
        self.assertIn("block", refused.message)
        self.assertRegex(refused.message, r"panda_link\d is [0-9.]+ m inside block")
        served = self.ask(a, c)   # with the object still there
        self.assertTrue(served.success, served.message)
        self.assertEqual(served.stats.clearance_object, "block")
        self.world.publish(removal("block"))


if __name__ == "__main__":
    rostest.rosrun("latent_geodesics", "world", TestWorld)
