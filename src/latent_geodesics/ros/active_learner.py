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
import os
import threading

import rospy

from latent_geodesics.active_learning import SELECTORS, evaluate, select_queries
from latent_geodesics.data import load_data
from latent_geodesics.errors import ConfigError
from latent_geodesics.evaluation import data_evaluation_set
from latent_geodesics.learner import ActiveLearner, LoopConfig
from latent_geodesics.loading import load_model_with_graph
from latent_geodesics.msg import RoundMetrics
from latent_geodesics.ros import run_node
from latent_geodesics.srv import Demonstrate, Reload, SelectQueries, SelectQueriesResponse
from latent_geodesics.store import DemoStore
from latent_geodesics.teachers import Refused, in_joint_order


class ActiveLearnerNode:
    def __init__(self):
        p = lambda name, default: rospy.get_param("~" + name, default)  # noqa: E731
        system = p("system", "none")
        if system not in ("none", "arm", "pendulum"):
            raise ConfigError("~system must be none (any robot), arm or pendulum, not %r"
                             % system)
        defaults = LoopConfig()
        self.config = LoopConfig(**{name: p(name, getattr(defaults, name))
                                    for name in defaults.__dataclass_fields__}).validate()
        self.work_dir = os.path.abspath(p("work_dir", "active_learning"))
        os.makedirs(self.work_dir, exist_ok=True)
        self.store = DemoStore(p("store", os.path.join(self.work_dir, "demonstrations.db")))
        initial_data = p("initial_data", "")
        if initial_data:
            self.store.seed(*load_data(initial_data))
        self.server = p("server", "/geodesic_server")
        self.demonstrator = p("demonstrator", "/demonstrator")
        self.learner = ActiveLearner(self.store, self.work_dir, p("model_dir", ""),
                                     self.demonstrate, self.config, reload=self.reload,
                                     evaluate=self.evaluate, on_round=self.publish_round,
                                     on_ack=self.ack, log=rospy.loginfo)
        self.models = {}
        self.model_lock = threading.Lock()
        data, _ = self.store.data(up_to_round=0)   # StoreError: no ~initial_data given
        initial, _ = self.model_with_graph(self.learner.initial_model_dir)
        self.eval_pairs, self.held_out = data_evaluation_set(initial, data)
        self.metrics_pub = rospy.Publisher("~metrics", RoundMetrics, queue_size=10, latch=True)
        self.select_srv = rospy.Service("~select_queries", SelectQueries, self.handle_select)
        target = self.run_loop if p("auto", False) else self.serve_newest
        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    # --- what the loop calls --------------------------------------------------
    def demonstrate(self, query):
        self.wait_for_teacher()
        res = call_within(self.config.teacher_timeout, "the teacher %s/demonstrate"
                          % self.demonstrator,
                          rospy.ServiceProxy(self.demonstrator + "/demonstrate", Demonstrate),
                          joint_names=self.store.joint_names(),
                          positions=list(map(float, query)))
        if not res.success:
            raise Refused(res.message)
        # Matched by name: a teacher may list the joints in any order.
        return in_joint_order(res.demonstration.joint_names,
                              [p.positions for p in res.demonstration.points],
                              self.store.joint_names())

    def wait_for_teacher(self, every=30.0):
        """Wait for the teacher's service for as long as it takes, saying so at once
        and every `every` seconds: a teacher node may be started after the learner."""
        name = self.demonstrator + "/demonstrate"
        waited = 0.0
        while not rospy.is_shutdown():
            try:
                rospy.wait_for_service(name, timeout=every if waited else 0.5)
                if waited:
                    rospy.loginfo("teacher %s is up", name)
                return
            except rospy.ROSException:
                rospy.logwarn("waiting for the teacher: no node offers %s (srv/Demonstrate) "
                              "yet%s; start your teacher node or set demonstrator:=<its "
                              "namespace>", name, " (%.0f s so far)" % waited if waited else "")
                waited += every if waited else 0.5
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

    def model_with_graph(self, model_dir):
        with self.model_lock:   # the newest model only: one in memory at a time
            if model_dir not in self.models:
                self.models = {model_dir: load_model_with_graph(
                    model_dir, self.config.device, warn=rospy.logwarn)}
            return self.models[model_dir]

    def evaluate(self, model_dir):
        return evaluate(*self.model_with_graph(model_dir), self.eval_pairs, self.held_out)

    def ack(self, rnd, idx, demo_id):
        # Counted as a user counts them: the initial data set is not a demonstration.
        rospy.loginfo("round %d query %d: demonstration stored (%d so far)", rnd, idx,
                      len(self.store.demonstration_ids()))

    def publish_round(self, rnd, metrics):
        counts = self.store.query_counts(rnd)
        self.metrics_pub.publish(RoundMetrics(
            round=rnd, selector=self.config.selector,
            demonstrations=counts.get("answered", 0), refused=counts.get("refused", 0),
            total_demonstrations=len(self.store.demonstration_ids()),
            smoothness=metrics["smoothness"], max_jump=metrics["max_jump"],
            max_step=metrics.get("max_step", 0.0),
            max_log_mf=metrics["max_log_mf"], held_out_rmse=metrics["held_out_rmse"],
            model_dir=self.learner.model_dir()))

    def serve_newest(self):
        """After a relaunch the server starts on the initial model: hand it the newest,
        and publish (latched) the metrics of the last finished round, or the initial
        model's as round 0: the baseline every round is compared with."""
        done = self.learner.completed_rounds()
        if done == 0:
            self.publish_round(0, self.evaluate(self.learner.initial_model_dir))
        else:
            newest = self.learner.model_dir()
            self.reload(newest)
            rospy.loginfo("serving the newest finished round's model %s", newest)
            metrics = self.store.round_info(done)["metrics"]
            if metrics:
                self.publish_round(done, metrics)

    def run_loop(self):
        try:
            self.serve_newest()
            self.learner.run()
            rospy.loginfo("active learning finished: %d rounds", self.learner.completed_rounds())
        except Exception as e:  # the node stays up for ~select_queries
            rospy.logerr("active learning loop stopped: %s", e)

    # --- the service ------------------------------------------------------------
    def handle_select(self, req):
        selector = req.selector or "combined"
        if selector not in SELECTORS:
            return SelectQueriesResponse(success=False, message="selector must be one of %s"
                                         % ", ".join(SELECTORS))
        if not 1 <= req.n <= 1000:
            return SelectQueriesResponse(success=False, message="n must be 1..1000, not %d"
                                         % req.n)
        try:
            model, graph = self.model_with_graph(self.learner.model_dir())
            q = select_queries(model, graph, req.n, selector)
        except ValueError as e:  # ModelError included
            return SelectQueriesResponse(success=False, message=str(e))
        return SelectQueriesResponse(success=True, message="%d queries" % len(q.latent),
                                     latent_dim=q.latent.shape[1],
                                     latent=q.latent.ravel().tolist(),
                                     joint_names=list(model.joint_names),
                                     positions=q.positions.ravel().tolist(),
                                     scores=q.scores.tolist())


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
