"""~execute's supervision rules (MoveIt's execution monitoring), without ROS."""
import threading

import pytest

from latent_geodesics.errors import ConfigError
from latent_geodesics.serving.execution import (
    ExecutionSettings,
    NewestGoal,
    cancelled_message,
    not_sent_message,
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


def test_a_preemption_by_a_new_goal_is_named_as_one_not_as_a_cancel():
    assert cancelled_message(2, preempted=True) == (
        "preempted by a new goal; the controller's goal was cancelled (PREEMPTED)")
    unconfirmed = cancelled_message(1, preempted=True)
    assert unconfirmed.startswith("preempted by a new goal; the controller's goal is still "
                                  "ACTIVE") and "stop it at the controller" in unconfirmed
    assert not_sent_message() == "cancelled before execution"
    assert not_sent_message(preempted=True) == "preempted by a new goal before execution"


def waiter(goals, goal, gone=lambda: False):
    """take() in a thread of its own: (the thread, a list that gets its answer)."""
    answer = []
    thread = threading.Thread(target=lambda: answer.append(goals.take(goal, gone)))
    thread.start()
    return thread, answer


def test_the_newest_goal_preempts_the_running_one_and_runs_once_it_ends():
    goals = NewestGoal(poll=0.01)
    goals.arrived("a")
    assert goals.take("a", lambda: False) and not goals.preempted("a")
    goals.arrived("b")
    assert goals.preempted("a") and not goals.preempted("b")
    thread, answer = waiter(goals, "b")
    thread.join(0.2)
    assert thread.is_alive() and answer == []   # "a" still holds the controller
    goals.release()                             # "a" ended
    thread.join(30)
    assert answer == [True]
    goals.release()
    assert goals.take("b", lambda: False)       # given back: free again


def test_a_waiting_goal_gives_up_when_a_newer_one_arrives_or_it_is_cancelled():
    goals = NewestGoal(poll=0.01)
    goals.arrived("a")
    assert goals.take("a", lambda: False)
    goals.arrived("b")
    second, second_answer = waiter(goals, "b")
    goals.arrived("c")                          # "b" is preempted before it ran
    second.join(30)
    assert second_answer == [False]
    cancelled = threading.Event()
    third, third_answer = waiter(goals, "c", cancelled.is_set)
    cancelled.set()
    third.join(30)
    assert third_answer == [False]
    goals.release()
    assert goals.take("c", lambda: False)       # nothing else held it meanwhile
