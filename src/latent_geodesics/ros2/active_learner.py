"""active_learner for ROS 2: the ROS 1 node's loop (ros/active_learner.py) over the
same LearningService. Service ~/select_queries; topic ~/metrics (RoundMetrics,
transient local as ROS 1 latches); asks the teacher's <demonstrator>/demonstrate
and reloads <server>/reload, each with its timeout from LoopConfig."""
import threading
import time

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile

from latent_geodesics.learning.loop import LoopConfig
from latent_geodesics.learning.service import LearnerNodeSettings, LearningService
from latent_geodesics.learning.teachers import Refused
from latent_geodesics.msg import RoundMetrics
from latent_geodesics.ros2.parameters import declare_settings, service_qos
from latent_geodesics.srv import Demonstrate, Reload, SelectQueries

LATCHED = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
TEACHER_WAIT_LOG = 30.0   # s between "waiting for the teacher" lines


class ActiveLearnerNode(Node):
    def __init__(self):
        super().__init__("active_learner",
                         automatically_declare_parameters_from_overrides=True)
        config = declare_settings(self, LoopConfig())
        node = declare_settings(self, LearnerNodeSettings())
        qos = service_qos(self)   # its service, and its calls to the teacher and server
        self.group = ReentrantCallbackGroup()
        self.teacher = self.create_client(Demonstrate, node.demonstrator + "/demonstrate",
                                          qos_profile=qos, callback_group=self.group)
        self.server = self.create_client(Reload, node.server + "/reload",
                                         qos_profile=qos, callback_group=self.group)
        self.metrics_pub = self.create_publisher(RoundMetrics, "~/metrics", LATCHED)
        log = self.get_logger()
        self.service = LearningService(config, node, self.demonstrate, self.reload,
                                       lambda fields: self.metrics_pub.publish(
                                           RoundMetrics(**fields)),
                                       log=log.info, error=log.error)
        self.create_service(SelectQueries, "~/select_queries", self.handle_select,
                            qos_profile=qos, callback_group=self.group)
        target = self.service.run_loop if node.auto else self.service.serve_newest
        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def call(self, client, request, timeout, what):
        """A service call from the loop's thread (the executor answers it), given
        up after `timeout` seconds with Refused."""
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            future.cancel()
            raise Refused("%s did not answer within %.0f s" % (what, timeout))
        return future.result()

    def demonstrate(self, joint_names, positions):
        wait_for_teacher(self.teacher, self.get_logger().warning)
        res = self.call(self.teacher, Demonstrate.Request(joint_names=joint_names,
                                                          positions=positions),
                        self.service.config.teacher_timeout,
                        "the teacher %s" % self.teacher.srv_name)
        if not res.success:
            raise Refused(res.message)
        return res.demonstration.joint_names, [p.positions for p in res.demonstration.points]

    def reload(self, model_dir):
        timeout = self.service.config.reload_timeout
        if not self.server.wait_for_service(timeout_sec=timeout):
            raise RuntimeError("no server offers %s" % self.server.srv_name)
        self.get_logger().info("asking %s to serve %s" % (self.server.srv_name, model_dir))
        try:
            res = self.call(self.server, Reload.Request(model_dir=model_dir), timeout,
                            self.server.srv_name)
        except Refused as e:
            raise RuntimeError(str(e)) from None
        if not res.success:
            raise RuntimeError("the server refused the new model: %s" % res.message)

    def handle_select(self, req, res):
        ok, message, fields = self.service.select(req.n, req.selector)
        res.success, res.message = ok, message
        for name, value in fields.items():
            setattr(res, name, value)
        return res


def wait_for_teacher(client, warn, first=0.5, every=TEACHER_WAIT_LOG):
    """Until a node offers the teacher's service (the `client`'s): a warning after
    `first` s, then every `every` s, each with the time waited so far."""
    started = time.monotonic()
    timeout = first
    while not client.wait_for_service(timeout_sec=timeout):
        warn("waiting for the teacher: no node offers %s (srv/Demonstrate) yet (%.1f s so "
             "far); start your teacher node or set the demonstrator parameter to its "
             "namespace" % (client.srv_name, time.monotonic() - started))
        timeout = every
