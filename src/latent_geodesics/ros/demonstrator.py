"""demonstrator: the simulated teacher. Service ~demonstrate (srv/Demonstrate).

Parameter ~system: arm (the simulated Panda) or pendulum.
"""
import rospy
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from latent_geodesics.learning.teachers import (
    TEACHERS,
    DemonstratorSettings,
    Refused,
    teacher_query,
)
from latent_geodesics.ros import run_node
from latent_geodesics.settings import read
from latent_geodesics.srv import Demonstrate, DemonstrateResponse


class Demonstrator:
    def __init__(self):
        params = read(DemonstratorSettings, lambda name, default: rospy.get_param(
            "~" + name, default))
        self.teacher = TEACHERS[params.system]()
        self.period = params.sample_period
        self.service = rospy.Service("~demonstrate", Demonstrate, self.handle)

    def handle(self, req):
        try:
            demo = self.teacher.demonstrate(teacher_query(self.teacher.joint_names,
                                                          req.joint_names, req.positions))
        except Refused as e:
            return DemonstrateResponse(success=False, message="refused: %s" % e)
        msg = JointTrajectory(joint_names=self.teacher.joint_names)
        msg.header.stamp = rospy.Time.now()
        msg.points = [JointTrajectoryPoint(positions=q.tolist(),
                                           time_from_start=rospy.Duration.from_sec(i * self.period))
                      for i, q in enumerate(demo)]
        return DemonstrateResponse(success=True, message="%d points" % len(demo),
                                   demonstration=msg)


def main():
    run_node("demonstrator", Demonstrator)
