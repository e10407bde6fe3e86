#!/usr/bin/env python3
"""A teacher the package never saw: ~demonstrate answers with a short motion that
ends at the asked configuration (each joint eased in from 0.1 rad away)."""
import rospy
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from latent_geodesics.srv import Demonstrate, DemonstrateResponse


def handle(req):
    if not req.joint_names or len(req.joint_names) != len(req.positions):
        return DemonstrateResponse(success=False, message="need named positions")
    msg = JointTrajectory(joint_names=list(req.joint_names))
    for i in range(6):
        offset = 0.1 * (5 - i) / 5
        msg.points.append(JointTrajectoryPoint(
            positions=[p + offset for p in req.positions],
            time_from_start=rospy.Duration.from_sec(0.1 * i)))
    return DemonstrateResponse(success=True, message="ok", demonstration=msg)


if __name__ == "__main__":
    rospy.init_node("teacher")
    rospy.Service("~demonstrate", Demonstrate, handle)
    rospy.spin()
