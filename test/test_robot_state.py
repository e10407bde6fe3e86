"""The robot's current state for requests with an empty start."""
import math

import pytest

from latent_geodesics.serving.robot_state import JointStateBuffer, StateError

NAMES = ["j1", "j2", "j3"]


def test_latest_state_by_name_extra_joints_ignored():
    buf = JointStateBuffer(max_age=1.0)
    buf.update(["j3", "gripper", "j1", "j2"], [3.0, 0.5, 1.0, 2.0], stamp=10.0)
    assert buf.current(NAMES, now=10.5) == (NAMES, [1.0, 2.0, 3.0])
    buf.update(["j2"], [-2.0], stamp=10.6)            # a partial message updates its joints
    assert buf.current(NAMES, now=10.7)[1] == [1.0, -2.0, 3.0]


@pytest.mark.parametrize("feed,now,fragment", [
    ([], 0.0, "no sensor_msgs/JointState has arrived"),
    ([(["j1", "j2"], [0.0, 0.0], 5.0)], 5.0, "lacks joints \\['j3'\\]"),
    ([(NAMES, [0.0, 0.0, 0.0], 5.0)], 7.0, "2.00 s old"),
    ([(NAMES, [0.0, math.nan, 0.0], 5.0)], 5.0, "NaN or inf in \\['j2'\\]"),
])
def test_unusable_states_are_refused(feed, now, fragment):
    buf = JointStateBuffer(max_age=1.0)
    for names, positions, stamp in feed:
        buf.update(names, positions, stamp)
    with pytest.raises(StateError, match=fragment):
        buf.current(NAMES, now)


def test_age_zero_accepts_any_age():
    buf = JointStateBuffer(max_age=0.0)
    buf.update(NAMES, [0.0, 0.0, 0.0], stamp=0.0)
    assert buf.current(NAMES, now=1e6)[1] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("names,positions,fragment", [
    (["j1", "j2", "j3"], [0.0, 0.0], "3 names but 2 positions"),
    (["j1", "j2", "j2"], [0.0, 0.0, 0.0], "repeat"),
])
def test_malformed_messages_are_refused_whole(names, positions, fragment):
    buf = JointStateBuffer(max_age=1.0)
    buf.update(NAMES, [1.0, 2.0, 3.0], stamp=10.0)
    with pytest.raises(StateError, match=fragment):
        buf.update(names, positions, stamp=10.1)
    assert buf.current(NAMES, now=10.2)[1] == [1.0, 2.0, 3.0]   # nothing of it applied


def test_a_stamp_from_the_future_is_refused_and_ages_by_its_arrival():
    buf = JointStateBuffer(max_age=1.0)
    with pytest.raises(StateError, match="3600.00 s ahead"):
        buf.update(NAMES, [0.0, 0.0, 0.0], stamp=3610.0, received=10.0)
    buf.update(NAMES, [0.0, 0.0, 0.0], stamp=10.3, received=10.0)   # within the skew
    assert buf.current(NAMES, now=10.5)[1] == [0.0, 0.0, 0.0]
    with pytest.raises(StateError, match="s old"):                  # aged by its arrival
        buf.current(NAMES, now=18.0)


def test_only_the_kept_joints_are_remembered():
    buf = JointStateBuffer(max_age=1.0, keep=NAMES)
    buf.update(NAMES + ["extra_%d" % i for i in range(1000)], [0.0] * 1003, stamp=1.0)
    assert set(buf._joints) == set(NAMES)


def test_start_check_names_the_joint_and_the_gap():
    from latent_geodesics.serving.robot_state import check_start
    check_start(["a", "b"], [0.0, 1.0], [0.005, 1.0], 0.01)           # within MoveIt's 0.01
    with pytest.raises(StateError, match=r"b is 0\.0500 rad .*allowed_start_tolerance 0\.0100"):
        check_start(["a", "b"], [0.0, 1.0], [0.005, 1.05], 0.01)
    check_start(["a"], [0.0], [3.0], 0.0)                               # 0: no check


def test_age_is_none_until_every_joint_was_heard():
    buf = JointStateBuffer(1.0)
    assert buf.age(["a"], 10.0) is None
    buf.update(["a"], [0.0], 9.0, received=9.5)
    assert buf.age(["a"], 10.0) == pytest.approx(1.0)
    assert buf.age(["a", "b"], 10.0) is None
