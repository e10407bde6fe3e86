"""The robot's current state for requests with an empty start."""
import math

import pytest

from latent_geodesics.robot_state import JointStateBuffer, StateError

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
