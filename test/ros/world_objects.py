"""What the world rostests share: the fixture's arm poses, the robot's body from the
URDF on robot_description, objects as MoveIt sends them, the server's ~scene, and the
independent dense check of a motion against objects."""
import os

import numpy as np
import rospy
from geometry_msgs.msg import Pose
from moveit_msgs.msg import CollisionObject
from shape_msgs.msg import SolidPrimitive

from latent_geodesics.srv import GetScene
from latent_geodesics.world.body import RobotBody
from latent_geodesics.world.scene import Scene, Shape, WorldObject
from latent_geodesics.world.verification import dense_collisions

NODE = "/geodesic_server"
NAMES = ["panda_joint%d" % i for i in range(1, 8)]
ROOT = "panda_link0"
HAND = "panda_link7"   # the URDF's last link: the hand's flange
RADIUS = 0.06          # m, the ball put on a motion (the measurement)


def fixture_poses():
    """Data poses of the fixture's arm model (test_execute.py's choice)."""
    data = np.load(os.path.join(rospy.get_param("~work_dir"), "fixture_data.npz"))["data"]
    return data[::97][1:8]


class World:
    """The robot's body and the server's scene, as a test reads them."""

    def __init__(self):
        self.urdf = rospy.get_param("/robot_description")
        self.body = RobotBody.from_urdf(self.urdf, NAMES)
        rospy.wait_for_service(NODE + "/scene", timeout=120)
        self.scene = rospy.ServiceProxy(NODE + "/scene", GetScene)
        self.objects = rospy.Publisher("/collision_object", CollisionObject, queue_size=10)
        wait_for_subscriber(self.objects)

    def hand_at(self, q):
        """The centre of the hand link's spheres at configuration q (root frame)."""
        centres = self.body.sphere_centres(np.asarray(q, float)[None])[0].detach().numpy()
        hand = self.body.link_names.index(HAND)
        return centres[self.body.sphere_links == hand].mean(axis=0)

    def wait_scene(self, predicate, timeout=20.0):
        """~scene once predicate(answer) holds; the last answer after the timeout."""
        deadline = rospy.get_time() + timeout
        while True:
            answer = self.scene()
            if predicate(answer) or rospy.get_time() > deadline:
                return answer
            rospy.sleep(0.05)

    def publish(self, msg):
        """A CollisionObject published; the scene answer once its version moved on."""
        version = self.scene().version
        self.objects.publish(msg)
        return self.wait_scene(lambda a: a.version > version)

    def dense(self, positions, objects):
        """The independent check (world/verification.py) of joint positions (T, 7)
        against objects {id: (centre, radius)}."""
        scene = Scene(ROOT, [WorldObject(i, None, (Shape.sphere(r, translation(c)),))
                             for i, (c, r) in objects.items()])
        return dense_collisions(self.urdf, NAMES, scene, np.asarray(positions, float),
                                spacing=0.005)


def wait_for_subscriber(publisher, timeout=60.0):
    deadline = rospy.get_time() + timeout
    while publisher.get_num_connections() == 0 and rospy.get_time() < deadline:
        rospy.sleep(0.05)
    assert publisher.get_num_connections() > 0, publisher.name


def translation(centre):
    pose = np.eye(4)
    pose[:3, 3] = centre
    return pose


def pose_msg(position, orientation=(0.0, 0.0, 0.0, 1.0)):
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = map(float, position)
    o = pose.orientation
    o.x, o.y, o.z, o.w = map(float, orientation)
    return pose


def ball(object_id, centre, radius=RADIUS, frame=ROOT, operation=CollisionObject.ADD):
    """A sphere as MoveIt sends it: the object's pose, its primitive at the origin."""
    msg = CollisionObject(id=object_id, operation=operation)
    msg.header.frame_id = frame
    msg.pose = pose_msg(centre)
    if operation == CollisionObject.ADD:
        msg.primitives = [SolidPrimitive(type=SolidPrimitive.SPHERE, dimensions=[radius])]
        msg.primitive_poses = [pose_msg((0, 0, 0))]
    return msg


def box(object_id, centre, size, frame=ROOT):
    msg = CollisionObject(id=object_id, operation=CollisionObject.ADD)
    msg.header.frame_id = frame
    msg.pose = pose_msg(centre)
    msg.primitives = [SolidPrimitive(type=SolidPrimitive.BOX, dimensions=list(size))]
    msg.primitive_poses = [pose_msg((0, 0, 0))]
    return msg


def removal(object_id):
    return CollisionObject(id=object_id, operation=CollisionObject.REMOVE)


def trajectory_positions(trajectory):
    """(T, 7) positions of a JointTrajectory in NAMES order."""
    order = [list(trajectory.joint_names).index(n) for n in NAMES]
    return np.array([[p.positions[i] for i in order] for p in trajectory.points])
