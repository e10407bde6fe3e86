"""An active-learning round through ROS 2: the learner asks a teacher node written
here (its joints in its own order), stores each demonstration before it is
acknowledged, retrains, has the server reload the new model, and publishes the
round's metrics (transient local, as ROS 1 latches)."""
import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile
from trajectory_msgs.msg import JointTrajectoryPoint

from latent_geodesics.learning.store import DemoStore
from latent_geodesics.msg import RoundMetrics
from latent_geodesics.srv import Demonstrate, Encode, SelectQueries

LATCHED = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class ForeignTeacher:
    """Answers a query with a short straight motion through it, joints reversed."""

    def __init__(self, node):
        self.asked = []
        self.service = node.create_service(Demonstrate, "/test_teacher/demonstrate",
                                           self.handle)

    def handle(self, req, res):
        q = np.array(req.positions)
        self.asked.append(q)
        names = list(req.joint_names)[::-1]
        res.demonstration.joint_names = names
        for t in np.linspace(-0.05, 0.05, 12):
            res.demonstration.points.append(JointTrajectoryPoint(
                positions=(q + t)[::-1].tolist()))
        res.success, res.message = True, "12 points"
        return res


def test_a_round_with_a_teacher_node_stores_its_demonstrations(
        fixture_dir, start_node, client, tmp_path):
    teacher = ForeignTeacher(client.node)
    start_node("server", "--ros-args", "-r", "__node:=al_server",
               "-p", "model_dir:=%s" % (fixture_dir / "fixture_model"), "-p", "device:=cpu",
               "-p", "robot_description_wait:=0.0", name="al_server")
    client.wait(Encode, "/al_server/encode")
    store = tmp_path / "demonstrations.db"
    learner = start_node("learner", "--params-file", "config/active_learner.yaml",
                         "--ros-args", "-p", "model_dir:=%s" % (fixture_dir / "fixture_model"),
                         "-p", "initial_data:=%s" % (fixture_dir / "fixture_data.npz"),
                         "-p", "work_dir:=%s" % tmp_path, "-p", "store:=%s" % store,
                         "-p", "rounds:=1", "-p", "queries_per_round:=2", "-p", "epochs:=2",
                         "-p", "device:=cpu", "-p", "server:=/al_server",
                         "-p", "demonstrator:=/test_teacher", name="learner")
    rounds = []
    client.node.create_subscription(RoundMetrics, "/active_learner/metrics",
                                    rounds.append, LATCHED)
    client.spin_for(240, until=lambda: any(m.round == 1 for m in rounds))
    assert [m.round for m in rounds][-1:] == [1], learner.output()[-3000:]
    done = rounds[-1]
    assert len(teacher.asked) == 2 and done.demonstrations == 2
    assert done.total_demonstrations == 2 and done.refused == 0
    assert "round_1" in done.model_dir or done.model_dir != str(fixture_dir / "fixture_model")
    assert np.isfinite(done.held_out_rmse) and done.held_out_rmse > 0
    assert "asking /al_server/reload" in learner.output()
    assert len(DemoStore(str(store)).demonstration_ids()) == 2

    picked = client.call(SelectQueries, "/active_learner/select_queries", n=3, selector="")
    assert picked.success and len(picked.scores) == 3
    refused = client.call(SelectQueries, "/active_learner/select_queries", n=0, selector="")
    assert not refused.success and "n must be" in refused.message
