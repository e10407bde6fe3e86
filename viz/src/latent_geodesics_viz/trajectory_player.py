"""trajectory_player: shows the latest geodesic on a robot model in rviz.

Plays the latest `trajectory` (trajectory_msgs/JointTrajectory, remap it to the
server's ~trajectory) as `joint_states` (remap it away from the robot's own) for
robot_state_publisher, in a loop with a pause at the end, and broadcasts a static
transform from ~fixed_frame to ~latent_frame so ~latent_path can be drawn beside
the robot. Relays the server's `scene_markers` (the objects it plans around, in the
robot's frames) as `ghost_scene_markers` in the ghost's frames (~frame_prefix), so rviz
draws them around the ghost without touching the real robot's TF tree. Reads
robot_description (remap it to the ghost's) to warn when the URDF lacks the
trajectories' joints. Run by latent_geodesics_viz's view.launch.
Parameters: ~rate (Hz), ~pause (s), ~fixed_frame, ~latent_frame,
~latent_offset ([x, y, z] in metres), ~frame_prefix (ghost/).
"""
import threading

import rospy
import tf2_ros
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from latent_geodesics.ros import run_node
from latent_geodesics.serving.trajectory import position_at
from latent_geodesics.world.urdf import URDFError, urdf_joint_names


class TrajectoryPlayer:
    def __init__(self):
        self.rate = float(rospy.get_param("~rate", 30.0))
        self.pause = float(rospy.get_param("~pause", 1.0))
        self.lock = threading.Lock()
        self.checked = set()
        self.latest, self.started = None, None
        self.static_tf = tf2_ros.StaticTransformBroadcaster()
        self.static_tf.sendTransform(self.latent_transform())
        self.state_pub = rospy.Publisher("joint_states", JointState, queue_size=10)
        self.trajectory_sub = rospy.Subscriber("trajectory", JointTrajectory, self.on_trajectory,
                                               queue_size=1)
        self.frame_prefix = rospy.get_param("~frame_prefix", "ghost/")
        self.markers_pub = rospy.Publisher("ghost_scene_markers", MarkerArray, queue_size=1,
                                           latch=True)
        self.markers_sub = rospy.Subscriber("scene_markers", MarkerArray, self.on_scene_markers,
                                            queue_size=1)
        self.timer = rospy.Timer(rospy.Duration(1.0 / self.rate), self.tick)

    def on_scene_markers(self, msg):
        for marker in msg.markers:
            if marker.header.frame_id:
                marker.header.frame_id = self.frame_prefix + marker.header.frame_id.lstrip("/")
        self.markers_pub.publish(msg)

    @staticmethod
    def latent_transform():
        t = TransformStamped()
        t.header.stamp = rospy.Time.now()
        t.header.frame_id = rospy.get_param("~fixed_frame", "panda_link0")
        t.child_frame_id = rospy.get_param("~latent_frame", "latent")
        x, y, z = rospy.get_param("~latent_offset", [0.0, 2.5, 0.0])
        t.transform.translation.x, t.transform.translation.y = x, y
        t.transform.translation.z = z
        t.transform.rotation.w = 1.0
        return t

    def on_trajectory(self, msg):
        if not msg.points:
            return
        self.check_robot(msg.joint_names)
        with self.lock:
            self.latest = (list(msg.joint_names),
                           [p.time_from_start.to_nsec() for p in msg.points],
                           [list(p.positions) for p in msg.points])
            self.started = rospy.get_time()

    def check_robot(self, joint_names):
        """An error (once per joint set) when robot_description lacks the joints the
        trajectories move: rviz would draw that robot frozen in its zero pose."""
        names = tuple(joint_names)
        if names in self.checked:
            return
        self.checked.add(names)
        missing = urdf_lacks(rospy.get_param("robot_description", ""), names)
        if missing:
            rospy.logerr("the robot_description URDF has no joints %s that the served "
                         "trajectories move: rviz shows that robot in its zero pose, not the "
                         "motion. Give your robot's URDF: roslaunch latent_geodesics_viz "
                         "view.launch urdf:=your_robot.urdf", list(missing))

    def tick(self, _event):
        with self.lock:
            if self.latest is None:
                return
            names, time_ns, positions = self.latest
            elapsed = rospy.get_time() - self.started
        period = time_ns[-1] / 1e9 + self.pause
        state = JointState(name=names, position=position_at(
            time_ns, positions, elapsed % period).tolist())
        state.header.stamp = rospy.Time.now()
        self.state_pub.publish(state)


def urdf_lacks(urdf_xml, joint_names):
    """The joint names a URDF (an XML string; empty: none) does not define."""
    try:   # the package's guarded parser: no DOCTYPE, no entities, no network
        defined = set(urdf_joint_names(urdf_xml))
    except URDFError:
        defined = set()
    return [n for n in joint_names if n not in defined]


def main():
    run_node("trajectory_player", TrajectoryPlayer)
