"""Plain data to ROS 2 messages and back, for the ROS 2 nodes: no node, no state
(as moveit_commander's conversions sit beside its facade)."""

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from sensor_msgs.msg import Image
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from latent_geodesics.geometry.plots import figure_rgb, latent_figure
from latent_geodesics.msg import GeodesicStats
from latent_geodesics.serving.service import fill, path_xyz, trajectory_points


def response(msg, reply, stamp=None):
    """A response or result filled from the service's Reply (a trajectory stamped
    `stamp`, else 0)."""
    return fill(msg, reply, lambda result: trajectory_msg(result, stamp), GeodesicStats)


def trajectory_msg(result, stamp=None):
    """stamp 0 unless given: a controller starts a zero-stamped trajectory on
    arrival, while a past stamp makes it skip the points already "due"."""
    msg = JointTrajectory(joint_names=list(result.joint_names))
    if stamp is not None:
        msg.header.stamp = stamp
    for q, v, a, (sec, nanosec) in trajectory_points(result):
        point = JointTrajectoryPoint(positions=q, velocities=v, accelerations=a)
        point.time_from_start.sec, point.time_from_start.nanosec = sec, nanosec
        msg.points.append(point)
    return msg


def path_msg(latent, frame_id, stamp):
    path = Path()
    path.header.stamp, path.header.frame_id = stamp, frame_id
    for x, y, z in path_xyz(latent):
        pose = PoseStamped(header=path.header)
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = x, y, z
        pose.pose.orientation.w = 1.0
        path.poses.append(pose)
    return path


def mf_image(served, frame_id, stamp):
    """The served metric's log magnification factor over the latent data, as an image."""
    rgb = figure_rgb(latent_figure(served.graph.decoder, served.model.latents,
                                   title="log MF (served metric) and data", resolution=96))
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8",
                step=3 * rgb.shape[1], data=np.ascontiguousarray(rgb).tobytes())
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    return msg


def diagnostics_msg(node_name, report, stamp):
    ok, message, values = report
    status = DiagnosticStatus(level=DiagnosticStatus.OK if ok else DiagnosticStatus.WARN,
                              name="%s: geodesic server" % node_name, message=message,
                              hardware_id="latent_geodesics/" + node_name,
                              values=[KeyValue(key=k, value=v) for k, v in values])
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
