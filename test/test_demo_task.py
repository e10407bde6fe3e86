"""The demo's ROS-free parts: its task (carries over the box with a hole), its teacher,
and the report's checks (a check that passes on "no better" is no check). The demo
end to end, through ROS, is test/ros/test_demo.py."""
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:   # the demo lives beside the package, not in it
    sys.path.insert(0, str(ROOT))

from demo.learning import worst_hole  # noqa: E402
from demo.report import WIDE_MARGIN, learning_checks, serving_checks  # noqa: E402
from demo.task import (  # noqa: E402
    HOLE,
    PLACES,
    POINTS,
    RouteTeacher,
    carry_dataset,
    hole_places,
    showcase_pairs,
    sideways,
    through_box,
)
from latent_geodesics.learning.teachers import Refused  # noqa: E402
from latent_geodesics.serving.fidelity import chord, largest_deviation  # noqa: E402
from latent_geodesics.sim.arm import ArmSimulator  # noqa: E402


@pytest.fixture(scope="module")
def carry():
    return carry_dataset(n_demos=24, seed=3)


@pytest.fixture(scope="module")
def teacher():
    return RouteTeacher(resolution=0.01)


@pytest.mark.slow   # inverse kinematics for the carries
def test_the_carries_lift_over_the_box_where_the_straight_line_goes_through(carry):
    sim = ArmSimulator()
    assert len(carry.demos) == 24 and carry.data.shape == (24 * POINTS, 7)
    assert ((carry.places < HOLE[0]) | (carry.places > HOLE[1])).all()
    assert (carry.places >= PLACES[0]).all() and (carry.places <= PLACES[1]).all()
    through = 0
    for demo in carry.demos:
        assert sim.is_valid(demo)                      # limits, table and box
        line = chord(demo[0], demo[-1], 0.01)
        assert largest_deviation(line, demo) > 0.3     # the demonstrations curve
        through += through_box(line)
    assert through >= len(carry.demos) // 2


@pytest.mark.slow   # inverse kinematics for the carries
def test_showcase_pairs_are_one_carry_each_spread_along_the_table(carry):
    pairs = showcase_pairs(carry, 3)
    assert len(pairs) == 3
    places = []
    for i, j in pairs:
        assert j - i == POINTS - 1 and i % POINTS == 0   # first and last pose of one carry
        places.append(carry.places[i // POINTS])
    assert places == sorted(places) and places[-1] - places[0] > 0.2
    allowed = np.ones(len(carry.data), dtype=bool)
    allowed[pairs[0][0]] = False                       # that pick is not reproduced
    assert pairs[0] not in showcase_pairs(carry, 3, allowed)


@pytest.mark.slow   # inverse kinematics for the carries
def test_the_teacher_demonstrates_the_carry_nearest_the_query(teacher):
    place = hole_places(1)[0]
    route = teacher.route(place, n=25)
    demo = teacher.demonstrate(route[12])              # the top of the lift, in the hole
    assert demo.shape == (POINTS, 7)
    assert abs(teacher.nearest(demo[POINTS // 2])[0] - place) <= 0.015
    assert largest_deviation(demo, route) < 0.1        # the same carry, as a person does it
    assert sideways(demo, place) < 0.03


@pytest.mark.slow   # inverse kinematics for the carries
def test_the_teacher_refuses_what_is_no_carry(teacher):
    far = teacher.route(0.5, n=25)[12] + 0.6
    with pytest.raises(Refused, match="rad from every carry"):
        teacher.demonstrate(far)
    with pytest.raises(Refused, match="7 finite joint angles"):
        teacher.demonstrate([0.0, 1.0])


def hole_round(number, deviation, data_distance, in_hole=3, asked=3):
    return {"round": number, "query_places": None if number == 0 else [0.5] * asked,
            "queries_in_hole": None if number == 0 else in_hole,
            "hole": [{"place": 0.5, "deviation": deviation, "data_distance": data_distance}]}


def verdicts(checks):
    return [c.ok for c in checks]


def test_active_learning_checks_count_no_better_as_a_warning():
    better = [hole_round(0, 0.6, 0.2), hole_round(1, 0.3, 0.07)]
    assert verdicts(learning_checks(better)) == [True, True, True]
    same = [hole_round(0, 0.6, 0.1), hole_round(1, 0.6, 0.1)]
    assert verdicts(learning_checks(same)) == [True, False, False]
    slightly = [hole_round(0, 0.6, 0.2), hole_round(1, 0.5, 0.07)]   # not by 30 %
    assert verdicts(learning_checks(slightly))[1] is False
    elsewhere = [hole_round(0, 0.6, 0.2), hole_round(1, 0.3, 0.07, in_hole=1)]
    assert verdicts(learning_checks(elsewhere))[0] is False
    assert learning_checks(better[:1]) == []


def test_a_refused_motion_in_the_hole_is_the_worst():
    refused = hole_round(1, 0.3, 0.07)
    refused["hole"].append({"place": 0.52, "refused": "the model cannot reproduce it"})
    assert worst_hole(refused, "deviation") == np.inf
    assert verdicts(learning_checks([hole_round(0, 0.6, 0.2), refused]))[1:] == [False, False]


def served(data_distance, chord_data_distance):
    return {"data_distance": data_distance, "chord_data_distance": chord_data_distance,
            "data_spacing": 0.03, "refine_round_trip_ms": 50.0, "graph_length": 1.0,
            "straight_line_length": 2.0, "refined_length": 0.9, "endpoint_error": 0.0,
            "max_joint_step": 0.04}


def test_served_motions_must_beat_the_straight_line_by_a_wide_margin():
    services = {"rviz": "not run"}
    checks = {c.title: c.ok for c in serving_checks([served(0.06, 0.5)], services)}
    ratio = [t for t in checks if t.startswith("... against the joint straight line")][0]
    assert checks[ratio]
    barely = {c.title: c.ok for c in serving_checks(
        [served(0.06, 0.5), served(0.1, 0.1 / (WIDE_MARGIN * 1.1))], services)}
    assert not barely[ratio]


def test_the_demo_keeps_its_model_only_for_the_same_training_code(tmp_path, monkeypatch,
                                                                   capsys):
    """default_model trains once, keeps that model for the next run, and trains again
    when the training code has changed (an updated clone keeps out/)."""
    import demo
    monkeypatch.setattr(demo, "carry_dataset", lambda seed: carry_dataset(n_demos=4, seed=seed))
    first = demo.default_model(str(tmp_path), epochs=1)[0]
    assert "training the demo's model" in capsys.readouterr().out
    kept = demo.default_model(str(tmp_path), epochs=1)[0]
    assert "training the demo's model" not in capsys.readouterr().out
    assert kept.meta["training_code_sha256"] == first.meta["training_code_sha256"]
    monkeypatch.setattr(demo, "training_code", lambda: "other code")
    again = demo.default_model(str(tmp_path), epochs=1)[0]
    assert "training the demo's model" in capsys.readouterr().out
    assert again.meta["training_code_sha256"] == "other code"
