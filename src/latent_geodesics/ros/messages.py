"""Plain data to ROS 1 messages, for the ROS 1 nodes: no node, no state (as
moveit_commander's conversions sit beside its facade)."""
import numpy as np
import rospy
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from sensor_msgs.msg import Image
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from latent_geodesics.geometry.plots import figure_rgb, latent_figure
from latent_geodesics.msg import GeodesicStats
from latent_geodesics.serving.service import fill, path_xyz, trajectory_points


def response(msg, reply, stamp_now=False):
    """A response or result filled from the service's Reply."""
    return fill(msg, reply, lambda result: trajectory_msg(result, stamp_now), GeodesicStats)


def trajectory_msg(result, stamp_now=False):
    """stamp 0 unless asked: a controller starts a zero-stamped trajectory on
    arrival, while a past stamp makes it skip the points already "due"."""
    msg = JointTrajectory(joint_names=result.joint_names)
    msg.header.stamp = rospy.Time.now() if stamp_now else rospy.Time(0)
    msg.points = [JointTrajectoryPoint(positions=q, velocities=v, accelerations=a,
                                       time_from_start=rospy.Duration(*sec_ns))
                  for q, v, a, sec_ns in trajectory_points(result)]
    return msg


def path_msg(latent, frame_id):
    """Latent points as a nav_msgs/Path (dimensions beyond 3 dropped)."""
    path = Path()
    path.header.stamp, path.header.frame_id = rospy.Time.now(), frame_id
    for xyz in path_xyz(latent):
        pose = PoseStamped()
        pose.header = path.header
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = xyz
        pose.pose.orientation.w = 1.0
        path.poses.append(pose)
    return path


def mf_image(served, frame_id):
    """The served metric's log magnification factor over the latent data, as an image."""
    rgb = figure_rgb(latent_figure(served.graph.decoder, served.model.latents,
                                   title="log MF (served metric) and data", resolution=96))
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8",
                step=3 * rgb.shape[1], data=np.ascontiguousarray(rgb).tobytes())
    msg.header.stamp, msg.header.frame_id = rospy.Time.now(), frame_id
    return msg
