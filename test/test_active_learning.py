"""Active-learning scores on decoders with known answers, diversity, baselines."""
import os

import numpy as np
import pytest
import torch

from latent_geodesics.data import two_arcs
from latent_geodesics.graph.latent_graph import LatentGraph
from latent_geodesics.learning.selection import (
    diverse_top,
    evaluate,
    jump_ratio,
    nearest_distance,
    scores,
    select_queries,
)
from latent_geodesics.learning.teachers import ArmTeacher, PendulumTeacher, Refused

FOLD, HOLE = 0.3, -0.5


class FoldModel(torch.nn.Module):
    """x = (z1, z2, 3 tanh(20 (z1 - FOLD))): a sharp fold at z1 = FOLD."""
    x_dim = 3

    def __init__(self):
        super().__init__()
        self.register_buffer("x_std", torch.ones(3, dtype=torch.float64))

    @property
    def device(self):
        return self.x_std.device

    def decode(self, z):
        return torch.stack([z[:, 0], z[:, 1], 3 * torch.tanh(20 * (z[:, 0] - FOLD))], -1)

    def forward(self, z):
        return self.decode(z)

    def decode_std(self, z):
        return torch.ones(len(z), 3, dtype=z.dtype)


def grid_nodes(without=None, width=0.12):
    g = np.linspace(-1, 1, 41)
    nodes = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    if without is not None:
        nodes = nodes[np.abs(nodes[:, 0] - without) > width]
    return nodes


def test_top_query_lands_on_the_fold_where_data_is_missing():
    model = FoldModel().double()
    graph = LatentGraph(model, grid_nodes(without=FOLD), k=8)
    q = select_queries(model, graph, 1)
    assert abs(q.latent[0, 0] - FOLD) < 0.06
    assert q.positions.shape == (1, 3)


def test_mf_and_uncertainty_baselines_find_their_own_peaks():
    model = FoldModel().double()
    graph = LatentGraph(model, grid_nodes(without=HOLE, width=0.2), k=8)
    assert abs(select_queries(model, graph, 1, "mf").latent[0, 0] - FOLD) < 0.06
    assert abs(select_queries(model, graph, 1, "uncertainty").latent[0, 0] - HOLE) < 0.1
    random = select_queries(model, graph, 6, "random", seed=1)
    assert len(np.unique(random.latent, axis=0)) == 6


def test_scores_terms():
    model = FoldModel().double()
    graph = LatentGraph(model, grid_nodes(), k=8)
    pts = np.array([[FOLD, 0.0], [-0.8, 0.0]])
    terms = scores(model, graph, pts)
    # sqrt(det G): 1 x sqrt(1 + (60 sech^2)^2) at the fold, about 1 far from it.
    assert terms.log_mf[0] == pytest.approx(np.log(np.sqrt(1 + 60.0 ** 2)), rel=1e-6)
    assert terms.log_mf[1] == pytest.approx(0.0, abs=1e-6)
    assert terms.stretch[0] > 50 > terms.stretch[1]
    assert np.allclose(terms.combined, 0.5 * terms.sensitivity + 0.5 * terms.uncertainty)
    assert terms.decoded.shape == (2, 3) and terms.novelty.shape == (2,)


def test_batch_is_diverse():
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (500, 2))
    values = np.exp(-((points - 0.5) ** 2).sum(1) / 0.01)   # one sharp peak
    chosen = diverse_top(points, values, 5, radius=0.2)
    d = np.linalg.norm(points[chosen][:, None] - points[chosen][None], axis=-1)
    assert d[np.triu_indices(5, 1)].min() >= 0.2
    assert np.linalg.norm(points[chosen[0]] - 0.5) < 0.1


@pytest.mark.parametrize("dim", [3, 40])   # k-d tree; chunked products (images)
def test_nearest_distance(dim):
    rng = np.random.default_rng(0)
    points, data = rng.normal(size=(300, dim)), rng.normal(size=(200, dim))
    brute = np.linalg.norm(points[:, None] - data[None], axis=2)
    assert np.allclose(nearest_distance(points, data, entries=64 * 200), brute.min(1))
    within = np.sort(np.linalg.norm(data[:, None] - data[None], axis=2), axis=1)
    assert np.allclose(nearest_distance(data, data, skip=1), within[:, 1])


def test_bad_selector_and_count():
    model = FoldModel().double()
    graph = LatentGraph(model, grid_nodes(), k=8)
    with pytest.raises(ValueError, match="selector"):
        select_queries(model, graph, 2, "greedy")
    with pytest.raises(ValueError, match="number of queries"):
        select_queries(model, graph, 0)


def test_jump_ratio():
    assert jump_ratio(np.linspace(0, 1, 11)[:, None]) == pytest.approx(1.0)
    steps = np.r_[np.linspace(0, 0.1, 10), [1.0, 1.01]][:, None]
    assert jump_ratio(steps) > 5


@pytest.mark.slow
def test_evaluate_on_the_arm_model(arm_model, arm):
    graph = LatentGraph(arm_model, arm_model.latents, k=10)
    pairs = np.stack([arm.demos[0][[0, -1]], arm.demos[5][[0, -1]]])
    m = evaluate(arm_model, graph, pairs, arm.data[:300])
    assert m.smoothness >= 1.0 and np.isfinite(m.max_log_mf)
    assert 0 < m.held_out_rmse < 0.3


def test_arm_teacher_answers_and_refuses(arm):
    teacher = ArmTeacher()
    q = arm.demos[3][12]
    demo = teacher.demonstrate(q)
    assert np.linalg.norm(demo - q, axis=1).min() < 0.1 and teacher.sim.is_valid(demo)
    with pytest.raises(Refused, match="joint limits"):
        teacher.demonstrate(np.r_[q[:3], 0.5, q[4:]])          # joint 4 must be negative
    with pytest.raises(Refused, match="collision"):
        teacher.demonstrate(np.array([0, 1.5, 0, -0.6, 0, 1.5, 0.8]))   # hand in the table


def test_pendulum_teacher():
    teacher = PendulumTeacher()
    states = teacher.demonstrate([1.0, 0.0])
    assert states.shape[1] == 2 and np.abs(states[:, 0] - 1.0).min() < 0.3
    with pytest.raises(Refused):
        teacher.demonstrate([0.0, 50.0])


@pytest.mark.slow
@pytest.mark.parametrize("retrain", ["fine-tune", "scratch"])
def test_pendulum_loop_without_ros(tmp_path, retrain):
    """One round of the loop on the pendulum: queries answered, model retrained,
    from the previous model or from scratch."""
    from latent_geodesics.data import pendulum_dataset
    from latent_geodesics.learning.evaluation import pendulum_evaluation_set
    from latent_geodesics.learning.loop import ActiveLearner, LoopConfig
    from latent_geodesics.learning.store import DemoStore
    from latent_geodesics.model.iwae import load_model, save_model
    from latent_geodesics.model.training import train_iwae
    data, names = pendulum_dataset(n_rollouts=20)
    model, _ = train_iwae(data, names, epochs=5, hidden=(64, 32), device="cpu",
                          progress=False)
    save_model(model, str(tmp_path / "m0"), model.meta)
    store = DemoStore(str(tmp_path / "s.db"))
    store.seed(data, names)
    pairs, held_out = pendulum_evaluation_set()
    seen = []

    def metrics(directory):
        m = load_model(directory, "cpu")
        return evaluate(m, LatentGraph(m, m.latents, k=8), pairs, held_out)

    learner = ActiveLearner(store, str(tmp_path / "work"), str(tmp_path / "m0"),
                            PendulumTeacher().demonstrate,
                            LoopConfig(1, 3, epochs=2, device="cpu", retrain=retrain),
                            evaluate=metrics, on_round=lambda r, m: seen.append((r, m)),
                            log=lambda m: None)
    learner.run()
    assert [r for r, _ in seen] == [1] and np.isfinite(seen[0][1].smoothness)
    assert len(store.demonstration_ids()) == 3
    assert store.data()[0].shape[0] == len(data) + 3 * 50
    new = load_model(learner.model_dir(), "cpu")
    assert new.meta["hidden"] == [64, 32]          # the same shape either way
    # Fine-tuning keeps the first model's normalisation (its latent space); a model
    # from scratch normalises all the data it now has.
    kept = np.allclose(new.x_mean.cpu().numpy(), model.x_mean.cpu().numpy())
    assert kept == (retrain == "fine-tune")


@pytest.fixture(scope="module")
def arcs_model():
    from latent_geodesics.model.training import train_iwae
    model, _ = train_iwae(two_arcs(), ["a", "b", "c"], epochs=40, seed=0, device="cpu",
                          progress=False)
    return model


def test_queries_fill_the_gap_between_two_recorded_arcs(arcs_model):
    graph = LatentGraph(arcs_model, arcs_model.latents, k=10)
    assert graph.is_bridge.sum() >= 1                       # the gap is bridged
    in_gap = lambda q: int((np.abs(q.positions[:, 0]) < 0.3).sum())  # noqa: E731
    combined = select_queries(arcs_model, graph, 8, "combined")
    assert in_gap(combined) >= 5                             # several share the one gap
    assert in_gap(select_queries(arcs_model, graph, 8, "random")) <= 2


def test_variance_metric_keeps_geodesics_near_the_data(arcs_model, tmp_path):
    from latent_geodesics.model.iwae import save_model
    from latent_geodesics.serving.engine import Engine, Settings
    save_model(arcs_model, str(tmp_path / "m"), arcs_model.meta)
    z = arcs_model.latents
    rng = np.random.default_rng(0)   # pairs across the gap: one pose on each arc
    pairs = list(zip(rng.integers(0, 600, 8), 600 + rng.integers(0, 600, 8)))
    far = {}
    for metric in ("mean", "mean+variance"):
        engine = Engine(str(tmp_path / "m"), Settings(device="cpu", metric=metric),
                        log=lambda m: 0)
        far[metric] = np.mean([engine.served.graph.tree.query(
            engine.nn_geodesic(([], [], list(z[i])), ([], [], list(z[j]))).latent)[0].max()
            for i, j in pairs])
    assert far["mean+variance"] < 0.95 * far["mean"]   # measured: 0.86 x


@pytest.mark.parametrize("change", [{"rounds": 0}, {"queries_per_round": 5000},
                                    {"epochs": -1}, {"epochs": 2.5}, {"seed": -3},
                                    {"selector": "best"}, {"device": "tpu"},
                                    {"retrain": "fresh"},
                                    {"rounds": True}, {"max_demonstration_points": 1},
                                    {"teacher_timeout": 0}, {"reload_timeout": float("inf")}])
def test_loop_settings_outside_their_range_are_refused_by_name(change):
    from latent_geodesics.errors import ConfigError
    from latent_geodesics.learning.loop import LoopConfig
    name = next(iter(change))
    with pytest.raises(ConfigError, match="parameter %s must be " % name):
        LoopConfig(**change).validate()


def test_loop_settings_at_the_ends_of_their_ranges_pass_and_one_beyond_is_refused():
    """validate() checks each range where it ends: both ends pass, one step beyond
    either is refused naming the setting, its range and the value."""
    from latent_geodesics.errors import ConfigError
    from latent_geodesics.learning.loop import LoopConfig
    ends = {"rounds": (1, 10 ** 6), "queries_per_round": (1, 1000), "epochs": (1, 10 ** 5),
            "seed": (0, 2 ** 32 - 1), "max_demonstration_points": (2, 10 ** 7)}
    for name, (low, high) in ends.items():
        for value in (low, high):
            assert getattr(LoopConfig(**{name: value}).validate(), name) == value
        for value in (low - 1, high + 1):
            with pytest.raises(ConfigError, match=r"parameter %s must be an integer >= %d "
                                                  r"and <= %d, not %d " % (name, low, high,
                                                                           value)):
                LoopConfig(**{name: value}).validate()
    for device in ("cpu", "cuda", "cuda:1"):
        assert LoopConfig(device=device).validate().device == device
    tiny = LoopConfig(teacher_timeout=1e-3, reload_timeout=1e-3).validate()
    assert (tiny.teacher_timeout, tiny.reload_timeout) == (1e-3, 1e-3)
    with pytest.raises(ConfigError, match="parameter teacher_timeout must be a positive "
                                          "number <= 86400, not -1 "):
        LoopConfig(teacher_timeout=-1).validate()


def test_yaml_and_launch_defaults_are_the_loop_defaults():
    import dataclasses
    import os
    import xml.etree.ElementTree as ET

    import yaml

    from latent_geodesics.learning.loop import LoopConfig
    root = os.path.join(os.path.dirname(__file__), "..")
    with open(os.path.join(root, "config", "active_learner.yaml")) as f:
        params = yaml.safe_load(f)
    launch = {a.get("name"): a.get("default") for a in   # the file's own arguments
              ET.parse(os.path.join(root, "launch", "active_learning.launch")).findall("arg")}
    for field in dataclasses.fields(LoopConfig):
        assert params[field.name] == field.default, field.name
        if field.name in launch:   # launch arguments are strings
            assert launch[field.name] == str(field.default), field.name


def test_a_demonstration_is_stored_in_the_models_joint_order():
    from latent_geodesics.learning.teachers import in_joint_order
    rows = [[3.0, 2.0, 1.0], [6.0, 5.0, 4.0]]      # joints c, b, a
    assert np.array_equal(in_joint_order(["c", "b", "a"], rows, ["a", "b", "c"]),
                          [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    for names, rows_, reason in ((["a", "b", "x"], rows, r"unknown \['x'\], missing \['c'\]"),
                                 (["a", "b"], [[1.0, 2.0]], r"missing \['c'\]"),
                                 (["a", "a", "b"], rows, "repeat"),
                                 (["a", "b", "c"], [[1.0, 2.0]], "positions for 3 joints")):
        with pytest.raises(Refused, match=reason):
            in_joint_order(names, rows_, ["a", "b", "c"])


def test_one_bad_answer_refuses_that_query_and_the_loop_goes_on(tmp_path):
    """NaN, empty, wrong-width answers and a teacher that raises: each query is
    refused with its reason in the store; the good ones are stored."""
    from types import SimpleNamespace

    from latent_geodesics.learning.loop import ActiveLearner, LoopConfig
    from latent_geodesics.learning.store import DemoStore
    store = DemoStore(str(tmp_path / "s.db"))
    store.seed(np.random.default_rng(0).normal(size=(50, 2)), ["a", "b"])
    answers = iter([np.full((3, 2), np.nan), np.zeros((0, 2)), np.zeros((3, 3)),
                    RuntimeError("teacher crashed"), np.ones((4, 2))])

    def teacher(query):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer
    learner = ActiveLearner(store, str(tmp_path / "work"), str(tmp_path), teacher,
                            LoopConfig(1, 5, device="cpu"), log=lambda m: None)
    queries = SimpleNamespace(latent=np.zeros((5, 2)), positions=np.zeros((5, 2)),
                              scores=np.zeros(5))
    store.start_round(1, str(tmp_path), "random", queries)
    learner.collect(1, str(tmp_path))
    positions, statuses = store.queries(1)
    assert statuses == ["refused"] * 4 + ["answered"]
    reasons = [r for (r,) in store.db.execute(
        "SELECT message FROM queries WHERE round=1 AND status='refused' ORDER BY idx")]
    assert "NaN" in reasons[0] and "shape (0, 2)" in reasons[1] and "(3, 3)" in reasons[2]
    assert "teacher crashed" in reasons[3]
    assert len(store.demonstration_ids()) == 1


def test_a_long_demonstration_is_subsampled_evenly(tmp_path):
    from latent_geodesics.learning.loop import ActiveLearner, LoopConfig
    from latent_geodesics.learning.store import DemoStore
    store = DemoStore(str(tmp_path / "s.db"))
    store.seed(np.zeros((10, 2)) + np.arange(10)[:, None], ["a", "b"])
    logged = []
    learner = ActiveLearner(store, str(tmp_path / "work"), str(tmp_path), None,
                            LoopConfig(max_demonstration_points=100, device="cpu"),
                            log=logged.append)
    demo = np.stack([np.arange(10 ** 5), np.zeros(10 ** 5)], 1).astype(float)
    kept = learner.capped(demo, 1, 0)
    assert len(kept) == 100 and kept[0, 0] == 0 and kept[-1, 0] == 10 ** 5 - 1
    assert np.allclose(np.diff(kept[:, 0]), (10 ** 5 - 1) / 99, atol=1)
    assert "subsampled evenly to max_demonstration_points 100" in logged[0]
    assert len(learner.capped(demo[:50], 1, 1)) == 50     # short ones are kept whole


def test_learner_yaml_defaults_are_the_loop_config_defaults():
    import dataclasses
    from pathlib import Path

    import yaml

    from latent_geodesics.learning.loop import LoopConfig
    path = Path(__file__).resolve().parents[1] / "config" / "active_learner.yaml"
    params = yaml.safe_load(path.read_text())
    for field in dataclasses.fields(LoopConfig):
        assert params[field.name] == field.default, field.name


JOINTS = ["j0", "j1", "j2", "j3"]


@pytest.fixture(scope="module")
def j_model_dir(tmp_path_factory):
    """A small model of the joints j0..j3."""
    from latent_geodesics.model.iwae import save_model
    from latent_geodesics.model.training import train_iwae
    data = np.random.default_rng(0).normal(size=(200, 4))
    model, _ = train_iwae(data, JOINTS, epochs=1, hidden=(16,), device="cpu", progress=False)
    path = str(tmp_path_factory.mktemp("models") / "j")
    save_model(model, path, model.meta)
    return path


def test_a_store_of_other_joints_is_refused_naming_both(j_model_dir, tmp_path):
    """A store of joints a-d under a model of j0-j3 (with retrain: scratch the server
    ended up serving a-d): refused before the teacher is asked or the server reloaded."""
    from latent_geodesics.errors import StoreError
    from latent_geodesics.learning.loop import ActiveLearner, LoopConfig
    from latent_geodesics.learning.store import DemoStore
    store = DemoStore(str(tmp_path / "s.db"))
    store.seed(np.random.default_rng(0).normal(size=(200, 4)), ["a", "b", "c", "d"])
    asked, reloaded = [], []
    learner = ActiveLearner(store, str(tmp_path / "work"), j_model_dir, asked.append,
                            LoopConfig(1, 2, epochs=1, device="cpu", retrain="scratch"),
                            reload=reloaded.append, log=lambda m: None)
    with pytest.raises(StoreError, match=r"s\.db holds demonstrations of the joints "
                                         r"\['a', 'b', 'c', 'd'\], but model_dir .*j is a model "
                                         r"of the joints \['j0', 'j1', 'j2', 'j3'\]: give "
                                         r"model_dir .* a new store"):
        learner.run()
    assert asked == [] and reloaded == [] and store.current_round() == (0, "done")
    same = DemoStore(str(tmp_path / "same.db"))
    same.seed(np.zeros((10, 4)), JOINTS[::-1])       # the same joints in another order
    with pytest.raises(StoreError, match="j3', 'j2'"):
        ActiveLearner(same, str(tmp_path / "work2"), j_model_dir, None,
                      log=lambda m: None).check_store()


def finished_round(store, model_dir, trained_dir):
    from types import SimpleNamespace
    queries = SimpleNamespace(latent=np.zeros((1, 2)), positions=np.zeros((1, 4)),
                              scores=np.zeros(1))
    store.start_round(1, model_dir, "random", queries)
    store.set_status(1, "done", trained_dir, {})


@pytest.mark.parametrize("lineage", ["another model", "another work_dir", "this model"])
def test_a_store_of_another_model_is_refused_before_the_server_reloads(j_model_dir, tmp_path,
                                                                       lineage):
    """A store whose round 1 asked another model, or whose finished rounds trained in
    another work_dir, made the server reload another directory's model at the start."""
    from latent_geodesics.errors import StoreError
    from latent_geodesics.learning.service import LearnerNodeSettings, LearningService, LoopConfig
    from latent_geodesics.learning.store import DemoStore
    work, other = str(tmp_path / "work"), str(tmp_path / "other")
    asked_model = str(tmp_path / "m_other") if lineage == "another model" else j_model_dir
    trained_in = other if lineage == "another work_dir" else work
    store = DemoStore(str(tmp_path / "s.db"))
    store.seed(np.random.default_rng(0).normal(size=(200, 4)), JOINTS)
    finished_round(store, asked_model, os.path.join(trained_in, "models", "round_1"))
    store.close()
    node = LearnerNodeSettings(model_dir=j_model_dir, work_dir=work, store=str(tmp_path / "s.db"))
    reloaded = []
    start = lambda: LearningService(LoopConfig(device="cpu"), node,  # noqa: E731
                                    None, reloaded.append, None, lambda m: None, None)
    if lineage == "this model":
        start().store.close()                        # its own store is taken as it is
        return
    fragment = (r"continues the model .*m_other \(its round 1 asked it\), not model_dir "
                r".*j: give model_dir") if lineage == "another model" else \
        r"round 1 trained the model .*other/models/round_1, outside this work_dir's"
    with pytest.raises(StoreError, match=fragment):
        start()
    assert reloaded == []


def test_round_metrics_name_the_message_fields_and_fill_them():
    """RoundMetrics and msg/RoundMetrics.msg name the same fields, in order; a round
    is counted from the store, and a round stored before max_step existed reads 0."""
    import dataclasses
    import re
    from types import SimpleNamespace

    from latent_geodesics.learning.selection import ModelQuality
    from latent_geodesics.learning.service import RoundMetrics, round_fields
    msg = os.path.join(os.path.dirname(__file__), "..", "msg", "RoundMetrics.msg")
    with open(msg) as f:
        fields = [m.group(1) for line in f
                  if (m := re.match(r"\s*[\w/]+(?:\[\])?\s+(\w+)\s*(?:#.*)?$", line))]
    assert [f.name for f in dataclasses.fields(RoundMetrics)] == fields
    store = SimpleNamespace(query_counts=lambda rnd: {"answered": 3, "refused": 1},
                            demonstration_ids=lambda: [4, 5, 6, 7])
    stored = {"smoothness": 1.5, "max_jump": 2.0, "max_log_mf": 0.3, "held_out_rmse": 0.1}
    metrics = round_fields(2, ModelQuality.from_dict(stored), SimpleNamespace(selector="mf"),
                           store, "/models/round_2")
    assert metrics == RoundMetrics(round=2, selector="mf", demonstrations=3, refused=1,
                                   total_demonstrations=4, smoothness=1.5, max_jump=2.0,
                                   max_step=0.0, max_log_mf=0.3, held_out_rmse=0.1,
                                   model_dir="/models/round_2")
