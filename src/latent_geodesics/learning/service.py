"""The active learner's work behind either ROS front end (ros/ and ros2/
active_learner.py): the store, the loop, the evaluation pairs, the newest model,
and the rounds' metrics. The node passes in how to ask the teacher, how to reload
the server and how to publish a round; it only converts messages."""
import os
import threading
from dataclasses import asdict, dataclass

from latent_geodesics.data import load_data
from latent_geodesics.learning.evaluation import data_evaluation_set
from latent_geodesics.learning.loop import ActiveLearner, LoopConfig
from latent_geodesics.learning.selection import (
    SELECTORS,
    ModelQuality,
    evaluate,
    select_queries,
)
from latent_geodesics.learning.store import DemoStore
from latent_geodesics.learning.teachers import Refused, in_joint_order
from latent_geodesics.model.loading import load_model_with_graph
from latent_geodesics.settings import setting


@dataclass(frozen=True)
class LearnerNodeSettings:
    """The active learner node's own parameters beside LoopConfig's (settings.py)."""
    auto: bool = setting(False, "run the automatic loop (else only ~select_queries)")
    work_dir: str = setting("active_learning", "where the rounds' models are written")
    store: str = setting("", "the demonstration store (default: work_dir/demonstrations.db)")
    initial_data: str = setting("", "the data the initial model was trained on (seeds the "
                                "store)")
    model_dir: str = setting("", "the initial model, the one the server serves")
    server: str = setting("/geodesic_server", "its ~reload is called with each new model")
    demonstrator: str = setting("/demonstrator", "its ~demonstrate is asked for each query")


@dataclass(frozen=True)
class RoundMetrics:
    """One finished round, field for field as msg/RoundMetrics.msg carries it (a test
    checks they agree); round 0: the initial model, before any query."""
    round: int
    selector: str
    demonstrations: int         # acknowledged demonstrations stored in this round
    refused: int                # queries the teacher refused
    total_demonstrations: int   # all acknowledged demonstrations so far
    smoothness: float
    max_jump: float
    max_step: float
    max_log_mf: float
    held_out_rmse: float
    model_dir: str              # the model now served


def round_fields(rnd, quality, config, store, model_dir) -> RoundMetrics:
    """A finished round's RoundMetrics, from its model's ModelQuality."""
    counts = store.query_counts(rnd)
    return RoundMetrics(round=rnd, selector=config.selector,
                        demonstrations=counts.get("answered", 0),
                        refused=counts.get("refused", 0),
                        total_demonstrations=len(store.demonstration_ids()),
                        model_dir=model_dir, **asdict(quality))


def query_fields(queries, joint_names):
    """SelectQueries' response fields of active_learning.select_queries' result."""
    return dict(latent_dim=queries.latent.shape[1], latent=queries.latent.ravel().tolist(),
                joint_names=list(joint_names), positions=queries.positions.ravel().tolist(),
                scores=queries.scores.tolist())


def check_select_request(selector, n, selectors):
    """The reason a SelectQueries request is refused, or None."""
    if selector not in selectors:
        return "selector must be one of %s" % ", ".join(selectors)
    if not 1 <= n <= 1000:
        return "n must be 1..1000, not %d" % n
    return None


class LearningService:
    def __init__(self, config, node, ask_teacher, reload, publish_round, log, error):
        """config: LoopConfig; node: LearnerNodeSettings; ask_teacher(joint_names,
        positions) -> (joint_names, rows) or Refused; reload(model_dir) raises on
        refusal; publish_round(fields) publishes RoundMetrics' fields (a mapping)."""
        self.config = config.validate()
        self.work_dir = os.path.abspath(node.work_dir)
        os.makedirs(self.work_dir, exist_ok=True)
        self.store = DemoStore(node.store or os.path.join(self.work_dir, "demonstrations.db"),
                               log=log)
        if node.initial_data:
            self.store.seed(*load_data(node.initial_data))
        self.ask_teacher, self.reload_server = ask_teacher, reload
        self.publish, self.log, self.error = publish_round, log, error
        self.learner = ActiveLearner(self.store, self.work_dir, node.model_dir,
                                     self.demonstrate, self.config, reload=reload,
                                     evaluate=self.evaluate, on_round=self.publish_round,
                                     on_ack=self.ack, log=log)
        self.learner.check_store()   # before the server is handed the store's newest model
        self.models, self.model_lock = {}, threading.Lock()
        data, _ = self.store.data(up_to_round=0)   # StoreError: no initial_data given
        initial, _ = self.model_with_graph(self.learner.initial_model_dir)
        self.eval_pairs, self.held_out = data_evaluation_set(initial, data)

    def demonstrate(self, query):
        names, rows = self.ask_teacher(self.store.joint_names(), list(map(float, query)))
        # Matched by name: a teacher may list the joints in any order.
        return in_joint_order(names, rows, self.store.joint_names())

    def model_with_graph(self, model_dir):
        with self.model_lock:   # the newest model only: one in memory at a time
            if model_dir not in self.models:
                self.models = {model_dir: load_model_with_graph(
                    model_dir, self.config.device, warn=self.log)}
            return self.models[model_dir]

    def evaluate(self, model_dir):
        return evaluate(*self.model_with_graph(model_dir), self.eval_pairs, self.held_out)

    def ack(self, rnd, idx, demo_id):
        # Counted as a user counts them: the initial data set is not a demonstration.
        self.log("round %d query %d: demonstration stored (%d so far)"
                 % (rnd, idx, len(self.store.demonstration_ids())))

    def publish_round(self, rnd, quality):
        # The front ends build their message from the fields by name.
        self.publish(asdict(round_fields(rnd, quality, self.config, self.store,
                                         self.learner.model_dir())))

    def serve_newest(self):
        """After a relaunch the server starts on the initial model: hand it the newest,
        and publish the metrics of the last finished round, or the initial model's as
        round 0: the baseline every round is compared with."""
        done = self.learner.completed_rounds()
        if done == 0:
            self.publish_round(0, self.evaluate(self.learner.initial_model_dir))
            return
        newest = self.learner.model_dir()
        self.reload_server(newest)
        self.log("serving the newest finished round's model %s" % newest)
        metrics = self.store.round_info(done)["metrics"]
        if metrics:
            self.publish_round(done, ModelQuality.from_dict(metrics))

    def run_loop(self):
        try:
            self.serve_newest()
            self.learner.run()
            self.log("active learning finished: %d rounds" % self.learner.completed_rounds())
        except Exception as e:  # the node stays up for ~select_queries
            self.error("active learning loop stopped: %s" % e)

    def select(self, n, selector):
        """(success, message, SelectQueries' fields)."""
        selector = selector or "combined"
        refusal = check_select_request(selector, n, SELECTORS)
        if refusal:
            return False, refusal, {}
        try:
            model, graph = self.model_with_graph(self.learner.model_dir())
            q = select_queries(model, graph, n, selector)
        except ValueError as e:  # ModelError included
            return False, str(e), {}
        return True, "%d queries" % len(q.latent), query_fields(q, model.joint_names)


__all__ = ["LearnerNodeSettings", "LearningService", "LoopConfig", "Refused", "RoundMetrics",
           "round_fields"]
