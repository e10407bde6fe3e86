#!/usr/bin/env python3
"""A teacher the package never saw, for a robot that records one planar motion
(the two-arc fixture): ~demonstrate answers with a short stretch of the true
motion (0.2 rad of its phase, recorded every 5 mrad) through the asked
configuration's phase, its first joint, listing the joints in reverse order."""
import numpy as np
import rospy
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from latent_geodesics.srv import Demonstrate, DemonstrateResponse

JOINTS = ["joint_1", "joint_2", "joint_3"]


def motion(t):
    return np.stack([t, 0.8 * np.sin(2 * t), 0.5 * np.cos(3 * t)], -1)


def handle(req):
    if sorted(req.joint_names) != sorted(JOINTS) or len(req.positions) != len(JOINTS):
        return DemonstrateResponse(success=False, message="need positions of %s" % JOINTS)
    phase = dict(zip(req.joint_names, req.positions))["joint_1"]
    if abs(phase) > 1.5:
        return DemonstrateResponse(success=False, message="phase %.2f is out of reach" % phase)
    # Its joints in an order of its own (reversed): the learner must match them by name.
    msg = JointTrajectory(joint_names=JOINTS[::-1])
    for i, pose in enumerate(motion(phase + np.linspace(-0.1, 0.1, 41))):
        msg.points.append(JointTrajectoryPoint(positions=pose[::-1].tolist(),
                                               time_from_start=rospy.Duration(0.02 * i)))
    return DemonstrateResponse(success=True, message="ok", demonstration=msg)


if __name__ == "__main__":
    rospy.init_node("teacher")
    rospy.Service("~demonstrate", Demonstrate, handle)
    rospy.spin()
