"""~execute's supervision rules (MoveIt's execution monitoring), without ROS."""
import pytest

from latent_geodesics.errors import ConfigError
from latent_geodesics.serving.execution import (
    ExecutionSettings,
    cancelled_message,
    status_name,
    timed_out_message,
)


def test_status_names_are_goal_status_names_not_lookalike_constants():
    assert status_name(0) == "PENDING" and status_name(1) == "ACTIVE"
    assert status_name(3) == "SUCCEEDED" and status_name(9) == "LOST"
    assert status_name(42) == "status 42"


def test_deadline_is_moveit_rule_and_can_be_switched_off():
    monitoring = ExecutionSettings()
    assert monitoring.deadline(1.07) == pytest.approx(1.2 * 1.07 + 0.5)
    assert ExecutionSettings(allowed_execution_duration_scaling=2.0,
                               allowed_goal_duration_margin=1.0).deadline(3.0) == 7.0
    assert ExecutionSettings(execution_duration_monitoring=False).deadline(1.0) is None


@pytest.mark.parametrize("field,value", [("allowed_execution_duration_scaling", 0.5),
                                         ("allowed_goal_duration_margin", -1.0),
                                         ("cancel_wait", float("nan"))])
def test_bad_monitoring_settings_are_refused_by_name(field, value):
    with pytest.raises(ConfigError, match=field):
        ExecutionSettings(**{field: value}).validate()


def test_a_cancel_is_reported_as_the_controller_reports_it():
    assert cancelled_message(2) == "cancelled; the controller's goal was cancelled (PREEMPTED)"
    assert "still ACTIVE" in cancelled_message(1) and "was cancelled" not in cancelled_message(1)
    assert "still PENDING" in cancelled_message(0)
    late = timed_out_message(1.07, ExecutionSettings(), 3)
    assert "1.78 s" in late and "already over (SUCCEEDED)" in late
