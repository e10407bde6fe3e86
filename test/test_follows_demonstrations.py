"""Served geodesics follow the demonstrations, not the joint-space chord: measured
against the demonstrated motion between two poses of one curved skill."""
import numpy as np
import pytest

from latent_geodesics.serving.engine import Engine, RequestError, Settings
from latent_geodesics.serving.fidelity import RecordedData, chord, largest_deviation
from latent_geodesics.sim.skills import curved_pairs

pytestmark = pytest.mark.slow
TOLERANCE = 0.15   # rad: the served motion's largest distance from the demonstrated one


def ends(engine, curved, a, b):
    names = list(engine.served.joint_names)
    return ((names, list(curved.data[a]), []), (names, list(curved.data[b]), []))


def deviations(engine, curved, pairs, refine=False):
    """Per pair: (served, chord, node path) largest deviation from the true motion."""
    out = []
    for a, b, pa, pb in pairs:
        truth = curved.motion(curved.skills[a], pa, pb, 400)
        start, goal = ends(engine, curved, a, b)
        served = (engine.nn_geodesic(start, goal) if refine
                  else engine.graph_geodesic(start, goal)).positions
        out.append((largest_deviation(served, truth),
                    largest_deviation(chord(curved.data[a], curved.data[b]), truth)))
    return np.array(out)


@pytest.fixture(scope="module")
def engines(curved_model_dir):
    quiet = dict(log=lambda m: None)
    return {metric: Engine(curved_model_dir, Settings(device="cpu", metric=metric,
                                                      graph_cache=False), **quiet)
            for metric in ("mean+variance", "mean")}


def test_served_graph_and_refined_geodesics_follow_the_demonstrated_motion(engines, curved):
    pairs = curved_pairs(curved, n_pairs=12)
    for refine in (False, True):
        dev = deviations(engines["mean+variance"], curved, pairs, refine)
        served, line = np.median(dev, axis=0)
        assert served <= TOLERANCE, (refine, served)
        assert served <= 0.3 * line, (refine, served, line)


def test_the_decoder_mean_alone_serves_the_chord(engines, curved):
    """Why the data-aware metric is the default: under J^T J alone the same pairs come
    out near the joint straight line (the test above would fail with it)."""
    dev = deviations(engines["mean"], curved, curved_pairs(curved, n_pairs=12))
    served, line = np.median(dev, axis=0)
    assert served > 2 * TOLERANCE and served > 0.6 * line


def test_stats_report_the_distance_to_the_data_against_the_chord(engines, curved):
    engine = engines["mean+variance"]
    recorded = RecordedData(curved.data)
    a, b, _, _ = curved_pairs(curved, n_pairs=1)[0]
    result = engine.graph_geodesic(*ends(engine, curved, a, b))
    st = result.stats
    assert st.data_distance == pytest.approx(recorded.distance(result.positions).largest)
    assert st.data_spacing == pytest.approx(recorded.spacing)
    assert st.data_distance_spacings == pytest.approx(st.data_distance / recorded.spacing)
    assert st.data_distance_mean <= st.data_distance
    assert st.data_distance < 0.5 * st.chord_data_distance


def test_max_data_distance_refuses_a_motion_that_leaves_the_data(curved_model_dir, curved):
    engine = Engine(curved_model_dir, Settings(device="cpu", max_data_distance=1e-3),
                    log=lambda m: None)
    a, b, _, _ = curved_pairs(curved, n_pairs=1)[0]
    with pytest.raises(RequestError, match=r"leaves the recorded data by .* more than "
                                           r"max_data_distance 0.001, at \d+ % of the way"):
        engine.graph_geodesic(*ends(engine, curved, a, b))
    engine.graph_geodesic(*ends(engine, curved, a, a + 1))   # still serving
