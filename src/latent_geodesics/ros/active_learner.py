"""active_learner: asks for demonstrations where the model is sensitive and unsure.

Service ~select_queries (srv/SelectQueries) for a person demonstrating by hand;
with ~auto, a loop of ~rounds rounds: select ~queries_per_round queries, ask the
demonstrator (any node offering ~demonstrator/demonstrate, srv/Demonstrate),
store each demonstration before it is acknowledged (SQLite store ~store),
fine-tune a new model beside the serving one, ~reload the geodesic server,
evaluate on pose pairs taken from the data itself, publish ~metrics
(msg/RoundMetrics). On start it hands the server the newest finished round's
model, so a relaunch after a crash serves what was learned.
"""
import threading
import time

import rospy

from latent_geodesics.learning.service import LearnerNodeSettings, LearningService, LoopConfig
from latent_geodesics.learning.teachers import Refused
from latent_geodesics.msg import RoundMetrics
from latent_geodesics.ros import run_node
from latent_geodesics.settings import read
from latent_geodesics.srv import Demonstrate, Reload, SelectQueries, SelectQueriesResponse


class ActiveLearnerNode:
    def __init__(self):
        def private(name, default):
            return rospy.get_param("~" + name, default)
        node = read(LearnerNodeSettings, private)
        self.server, self.demonstrator = node.server, node.demonstrator
        self.metrics_pub = rospy.Publisher("~metrics", RoundMetrics, queue_size=10, latch=True)
        self.service = LearningService(read(LoopConfig, private), node, self.demonstrate,
                                       self.reload,
                                       lambda fields: self.metrics_pub.publish(
                                           RoundMetrics(**fields)),
                                       log=rospy.loginfo, error=rospy.logerr)
        self.config = self.service.config
        self.select_srv = rospy.Service("~select_queries", SelectQueries, self.handle_select)
        target = self.service.run_loop if node.auto else self.service.serve_newest
        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def demonstrate(self, joint_names, positions):
        self.wait_for_teacher()
        res = call_within(self.config.teacher_timeout, "the teacher %s/demonstrate"
                          % self.demonstrator,
                          rospy.ServiceProxy(self.demonstrator + "/demonstrate", Demonstrate),
                          joint_names=joint_names, positions=positions)
        if not res.success:
            raise Refused(res.message)
        return res.demonstration.joint_names, [p.positions for p in res.demonstration.points]

    def wait_for_teacher(self, every=30.0):
        """Wait for the teacher's service for as long as it takes, saying so at once
        and every `every` seconds: a teacher node may be started after the learner."""
        name = self.demonstrator + "/demonstrate"
        started, timeout = time.monotonic(), 0.5
        while not rospy.is_shutdown():
            try:
                rospy.wait_for_service(name, timeout=timeout)
                if timeout == every:
                    rospy.loginfo("teacher %s is up", name)
                return
            except rospy.ROSException:   # the time really waited, not the periods counted
                rospy.logwarn(waiting_for_teacher(name, time.monotonic() - started))
                timeout = every
        raise rospy.ROSInterruptException("shut down while waiting for the teacher")

    def reload(self, model_dir):
        rospy.wait_for_service(self.server + "/reload", timeout=self.config.reload_timeout)
        rospy.loginfo("asking %s/reload to serve %s", self.server, model_dir)
        try:
            res = call_within(self.config.reload_timeout, "%s/reload" % self.server,
                              rospy.ServiceProxy(self.server + "/reload", Reload),
                              model_dir=model_dir)
        except Refused as e:
            raise RuntimeError(str(e)) from None
        if not res.success:
            raise RuntimeError("the server refused the new model: %s" % res.message)

    def handle_select(self, req):
        ok, message, fields = self.service.select(req.n, req.selector)
        return SelectQueriesResponse(success=ok, message=message, **fields)


def waiting_for_teacher(name, waited):
    return ("waiting for the teacher: no node offers %s (srv/Demonstrate) yet (%.1f s so "
            "far); start your teacher node or set demonstrator:=<its namespace>"
            % (name, waited))


def call_within(seconds, what, proxy, **request):
    """A service call that gives up after `seconds` (rospy's calls have no timeout):
    Refused saying so; the call's thread is left to finish on its own."""
    done = {}

    def call():
        try:
            done["response"] = proxy(**request)
        except Exception as e:   # reported to the caller below
            done["error"] = e
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise Refused("%s did not answer within %.0f s" % (what, seconds))
    if "error" in done:
        raise done["error"]
    return done["response"]


def main():
    run_node("active_learner", ActiveLearnerNode)
