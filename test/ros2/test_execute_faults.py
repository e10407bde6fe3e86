"""~/execute on ROS 2 supervises its controller as the ROS 1 node does (and MoveIt):
the ROS 1 rostest test/ros/test_execute_faults.py, and test/ros/test_execute.py's
cancel, ported, against a FollowJointTrajectory controller written here that
misbehaves as told.

A controller that appears late while the arm moves gets nothing (the start is checked
again just before sending); one that leaves the goal pending, never finishes, answers
late or dies is cancelled at allowed_execution_duration_scaling x duration +
allowed_goal_duration_margin and the result says TIMED_OUT; a cancel stops the arm and
reports the controller's goal status as it is, not as hoped; a new goal preempts the
running one, as on ROS 1 (SimpleActionServer) and as joint_trajectory_controller
replaces a running trajectory: the controller's goal is cancelled before the new
motion is sent from where the arm stopped."""
import threading
import time

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from control_msgs.action import FollowJointTrajectory
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from latent_geodesics.action import ExecuteGeodesic
from latent_geodesics.msg import Endpoint
from latent_geodesics.serving.trajectory import position_at
from latent_geodesics.srv import GetScene

from .test_execute import timeline
from .test_scene import GOAL, LATCHED, START, URDF, positions

Result = ExecuteGeodesic.Result
CANCEL_WAIT = 8.0   # s the server waits for a cancel's confirmation (its cancel_wait)
TARDY = 3.0         # s after the motion's end a tardy controller reports success: after
                    # the deadline (1.2 x duration + 0.5 s) and within the cancel wait
SLOW = dict(max_velocity_scaling_factor=0.2, max_acceleration_scaling_factor=0.2)


class FaultController(Node):
    """A FollowJointTrajectory controller that behaves as `behaviour` says:
      pending  accepts a goal but never starts it (it stays ACCEPTED), refuses cancels
      silent   starts it, never finishes, honours a cancel
      deaf     starts it, never finishes, refuses cancels
      tardy    starts it, refuses cancels, succeeds TARDY s after the motion's end
      normal   follows the trajectory in time (linear between points), stops where it
               is on a cancel
    It publishes the arm's joint_states at 100 Hz from the start; its action server
    appears at serve() (a controller started late), on `prefix`follow_joint_trajectory.
    It records when each goal arrived and how and when it ended."""

    def __init__(self, prefix, names, initial):
        super().__init__("fault_controller_" + prefix.strip("/"))
        self.prefix, self.names = prefix, list(names)
        self.position = np.array(initial, dtype=float)
        self.lock, self.closing = threading.Lock(), threading.Event()
        self.behaviour, self.server = "normal", None
        self.received, self.ended = [], []   # arrival times; (outcome, time) per goal
        self.group = ReentrantCallbackGroup()
        self.state_pub = self.create_publisher(JointState, prefix + "joint_states", 10)
        self.create_timer(0.01, self.publish, callback_group=self.group)

    def reset(self, behaviour):
        self.behaviour, self.received, self.ended = behaviour, [], []

    def serve(self):
        self.server = ActionServer(
            self, FollowJointTrajectory, self.prefix + "follow_joint_trajectory",
            execute_callback=self.execute, goal_callback=self.on_goal,
            handle_accepted_callback=self.on_accepted, callback_group=self.group,
            cancel_callback=lambda handle: CancelResponse.ACCEPT
            if self.behaviour in ("silent", "normal") else CancelResponse.REJECT)

    def arm(self):
        with self.lock:
            return self.position.copy()

    def move_to(self, position):
        with self.lock:
            self.position = np.asarray(position, dtype=float)

    def publish(self):
        msg = JointState(name=self.names, position=self.arm().tolist())
        msg.header.stamp = self.get_clock().now().to_msg()
        self.state_pub.publish(msg)

    def on_goal(self, goal):
        self.received.append(time.monotonic())
        return GoalResponse.ACCEPT

    def on_accepted(self, handle):
        if self.behaviour != "pending":
            handle.execute()

    def execute(self, handle):
        behaviour, ended = self.behaviour, self.ended   # this test's, not a later one's
        if behaviour == "normal":
            return self.follow(handle, ended)
        if behaviour == "tardy":
            end = seconds(handle.request.trajectory.points[-1].time_from_start)
            return self.end(handle, "abort" if self.closing.wait(end + TARDY) else "succeed",
                            ended)
        while not self.closing.wait(0.01):   # silent, deaf: never finish
            if handle.is_cancel_requested:    # only a silent one accepts the cancel
                return self.end(handle, "canceled", ended)
            if self.behaviour != behaviour:   # a later test: free the thread
                break
        return self.end(handle, "abort", ended)

    def follow(self, handle, ended):
        times, path = timeline(handle.request.trajectory, self.names)
        started = time.monotonic()
        while not handle.is_cancel_requested and not self.closing.is_set():
            elapsed = time.monotonic() - started
            self.move_to(position_at(times, path, elapsed))
            if elapsed * 1e9 >= times[-1]:
                return self.end(handle, "succeed", ended)
            time.sleep(0.005)
        return self.end(handle, "canceled" if handle.is_cancel_requested else "abort", ended)

    @staticmethod
    def end(handle, outcome, ended):
        getattr(handle, outcome)()
        ended.append((outcome, time.monotonic()))
        code = FollowJointTrajectory.Result.SUCCESSFUL if outcome == "succeed" else 0
        return FollowJointTrajectory.Result(error_code=code, error_string=outcome)


def seconds(duration):
    return duration.sec + duration.nanosec / 1e9


class Rig:
    """A server and its controller, each in its own process (the server) or thread."""

    def __init__(self, controller, node, spinner):
        self.controller, self.node, self.spinner = controller, node, spinner
        self.alive = True

    def kill_controller(self):
        """The controller dies: its node and everything it served vanish without a last
        word (its goals are destroyed first: a goal ended after that says nothing)."""
        if self.alive:
            self.alive = False
            self.spinner.remove_node(self.controller)
            if self.controller.server is not None:   # destroy_node leaves it (a waitable)
                self.controller.server.destroy()
            self.controller.destroy_node()
            self.controller.closing.set()   # frees its threads (the spinner stays: their
            # tasks end on it; stop_rig shuts it down)


def start_rig(name, prefix, fixture_dir, start_node, client, arm_data, serve):
    q, names = arm_data
    controller = FaultController(prefix, names, q[START])
    if serve:
        controller.serve()
    spinner = MultiThreadedExecutor(num_threads=6)
    spinner.add_node(controller)
    threading.Thread(target=spinner.spin, daemon=True).start()
    node = start_node("server", "--ros-args", "-r", "__node:=" + name,
                      "-r", "robot_description:=/fault_test/robot_description",
                      "-r", "joint_states:=%sjoint_states" % prefix,
                      "-p", "model_dir:=%s" % (fixture_dir / "fixture_model"),
                      "-p", "device:=cpu", "-p", "robot_description_wait:=20.0",
                      "-p", "move_group_wait:=0.0",
                      # on a busy test machine the server's joint_states callback may
                      # lag a second behind the controller's 100 Hz publishing
                      "-p", "joint_states_max_age:=3.0",
                      "-p", "controller_action:=%sfollow_joint_trajectory" % prefix,
                      "-p", "controller_wait:=30.0", "-p", "cancel_wait:=%s" % CANCEL_WAIT,
                      name=name)
    client.wait(GetScene, "/%s/scene" % name)
    wait_for_fresh_joint_states(client, name)
    return Rig(controller, node, spinner)


def stop_rig(rig):
    assert rig.node.stop() == 0, rig.node.output()[-3000:]   # a clean SIGINT
    rig.kill_controller()
    rig.spinner.shutdown()


def wait_for_fresh_joint_states(client, name):
    """The server's diagnostics say it reads the controller's joint_states: its own
    subscription matches a moment after the controller starts publishing."""
    ages = []

    def on_diagnostics(msg):
        for status in msg.status:
            if status.name.startswith(name + ":"):
                ages.extend(kv.value for kv in status.values if kv.key == "joint_states age (s)")
    sub = client.node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    fresh = lambda: ages and ages[-1] != "none" and float(ages[-1]) < 0.5   # noqa: E731
    client.spin_for(60, until=fresh)
    client.node.destroy_subscription(sub)
    assert fresh(), "the server saw no fresh joint_states from the test controller: %s" % ages


@pytest.fixture(scope="module")
def urdf(client):
    pub = client.node.create_publisher(String, "/fault_test/robot_description", LATCHED)
    pub.publish(String(data=URDF))
    yield
    client.node.destroy_publisher(pub)


@pytest.fixture(scope="module")
def rig(fixture_dir, start_node, client, arm_data, urdf):
    rig = start_rig("fault_server", "/fault_test/", fixture_dir, start_node, client, arm_data,
                    serve=True)
    yield rig
    stop_rig(rig)


def execute_client(client, name):
    action = ActionClient(client.node, ExecuteGeodesic, "/%s/execute" % name)
    assert action.wait_for_server(timeout_sec=60)
    return action


@pytest.fixture(scope="module")
def execute(client, rig):
    action = execute_client(client, "fault_server")
    yield action
    action.destroy()


def away(arm_data, here):
    """Of the two test poses, the one farther from the arm."""
    q, _ = arm_data
    return max((q[START], q[GOAL]), key=lambda p: np.abs(p - here).max())


def send(client, execute, goal, names, **fields):
    sent = execute.send_goal_async(ExecuteGeodesic.Goal(
        goal=Endpoint(joint_names=names, positions=list(map(float, goal))), **fields))
    handle = client.spin_until(sent, 30)
    assert handle is not None and handle.accepted
    return handle


def result_of(client, handle, timeout=180):
    answer = client.spin_until(handle.get_result_async(), timeout)
    assert answer is not None, "~/execute did not finish within %d s" % timeout
    return answer.status, answer.result


def wait_until_moving(client, controller, here, handle):
    """Until the controller holds a goal and the arm has left `here`; fails with
    ~/execute's answer if it ended first."""
    answer = handle.get_result_async()
    client.spin_for(120, until=lambda: answer.done() or (
        controller.received and np.abs(controller.arm() - here).max() > 1e-3))
    assert not answer.done(), "~/execute ended first: %s" % answer.result().result.message


def timed_out(client, execute, rig, arm_data, behaviour):
    """Execute against a controller that misbehaves: the result and the seconds it took."""
    rig.controller.reset(behaviour)
    here = rig.controller.arm()
    started = time.monotonic()
    handle = send(client, execute, away(arm_data, here), arm_data[1])
    status, result = result_of(client, handle)
    return status, result, time.monotonic() - started


def assert_timed_out(status, result, took, rig, status_words):
    assert status == GoalStatus.STATUS_ABORTED and not result.success, result.message
    assert result.error_code == Result.TIMED_OUT, result.message
    assert "timed out" in result.message and status_words in result.message, result.message
    duration = seconds(result.trajectory.points[-1].time_from_start)
    deadline = 1.2 * duration + 0.5   # the server's defaults, MoveIt's
    # never before the deadline; after it, the cancel wait and slack for a busy machine
    assert deadline < took < deadline + CANCEL_WAIT + 30.0, (took, duration)
    assert len(rig.controller.received) == 1


def test_a_controller_appearing_late_gets_nothing_once_the_arm_moved(
        fixture_dir, start_node, client, arm_data, urdf):
    late = start_rig("late_server", "/late_test/", fixture_dir, start_node, client, arm_data,
                     serve=False)
    try:
        execute = execute_client(client, "late_server")
        here = late.controller.arm()
        handle = send(client, execute, away(arm_data, here), arm_data[1])

        def appear():   # still while the server plans, then the arm drifts, then it serves
            if late.controller.closing.wait(5.0):
                return
            for step in range(1, 101):
                moved = here.copy()
                moved[0] += 0.25 * step / 100
                late.controller.move_to(moved)
                time.sleep(0.02)
            late.controller.serve()
        threading.Thread(target=appear, daemon=True).start()
        status, result = result_of(client, handle)
        assert status == GoalStatus.STATUS_ABORTED and not result.success, result.message
        assert result.error_code == Result.NOT_SENT, result.message
        assert "allowed_start_tolerance" in result.message, result.message
        assert late.controller.server is not None   # it did appear, and got nothing
        assert late.controller.received == []
        execute.destroy()
    finally:
        stop_rig(late)


def test_a_pending_goal_times_out_and_its_status_is_named(client, execute, rig, arm_data):
    status, result, took = timed_out(client, execute, rig, arm_data, "pending")
    assert_timed_out(status, result, took, rig, "still PENDING")


def test_a_controller_that_never_finishes_is_cancelled(client, execute, rig, arm_data):
    status, result, took = timed_out(client, execute, rig, arm_data, "silent")
    assert_timed_out(status, result, took, rig, "was cancelled (PREEMPTED)")
    assert [outcome for outcome, _ in rig.controller.ended] == ["canceled"]


def test_a_late_success_is_not_a_success(client, execute, rig, arm_data):
    status, result, took = timed_out(client, execute, rig, arm_data, "tardy")
    assert_timed_out(status, result, took, rig, "was already over (SUCCEEDED)")


def start_moving(client, execute, rig, arm_data):
    """(where the arm was, the goal, the goal handle) once a slow motion is under way."""
    rig.controller.reset("normal")
    here = rig.controller.arm()
    goal = away(arm_data, here)
    handle = send(client, execute, goal, arm_data[1], **SLOW)
    wait_until_moving(client, rig.controller, here, handle)
    return here, goal, handle


def test_a_cancel_stops_the_arm(client, execute, rig, arm_data):
    here, goal, handle = start_moving(client, execute, rig, arm_data)
    client.spin_until(handle.cancel_goal_async(), 30)
    status, result = result_of(client, handle)
    assert status == GoalStatus.STATUS_CANCELED and not result.success, result.message
    assert result.message == "cancelled; the controller's goal was cancelled (PREEMPTED)"
    stopped = rig.controller.arm()
    client.spin_for(0.5)
    assert np.abs(rig.controller.arm() - stopped).max() < 1e-9   # not moving any more
    assert np.abs(stopped - here).max() > 1e-3                   # it had moved
    assert np.abs(stopped - goal).max() > 0.05                   # and is not at the goal


def test_a_cancel_that_the_controller_ignores_is_reported_as_such(client, execute, rig,
                                                                  arm_data):
    rig.controller.reset("deaf")
    handle = send(client, execute, away(arm_data, rig.controller.arm()), arm_data[1], **SLOW)
    answer = handle.get_result_async()
    client.spin_for(120, until=lambda: rig.controller.received or answer.done())
    assert rig.controller.received, "no goal reached the controller"
    client.spin_until(handle.cancel_goal_async(), 30)
    status, result = result_of(client, handle)
    assert status == GoalStatus.STATUS_CANCELED, result.message
    assert "still ACTIVE" in result.message and "was cancelled" not in result.message


def test_a_new_goal_preempts_the_running_one(client, execute, rig, arm_data):
    here, goal, first = start_moving(client, execute, rig, arm_data)
    # back where it began, slowly: a motion of seconds leaves the controller's result
    # time to arrive on a busy machine (the deadline is 1.2 x its duration + 0.5 s)
    second = send(client, execute, here, arm_data[1], max_velocity_scaling_factor=0.1,
                  max_acceleration_scaling_factor=0.1)
    status, result = result_of(client, first)
    # ROS 2 has no PREEMPTED, and a goal ends CANCELED only on its own client's cancel
    assert status == GoalStatus.STATUS_ABORTED and not result.success, result.message
    assert result.message == ("preempted by a new goal; the controller's goal was "
                              "cancelled (PREEMPTED)")
    status, result = result_of(client, second)
    assert status == GoalStatus.STATUS_SUCCEEDED and result.success, result.message
    assert np.abs(rig.controller.arm() - here).max() < 0.02    # at the new goal
    # One motion at a time: the first controller goal was cancelled before the
    # second was sent, which starts where the arm had stopped.
    (first_end, first_ended), (second_end, _) = rig.controller.ended
    assert first_end == "canceled" and second_end == "succeed"
    assert len(rig.controller.received) == 2 and first_ended < rig.controller.received[1]
    start = positions(result)[0]
    assert np.abs(start - here).max() > 1e-3 and np.abs(start - goal).max() > 0.05


def test_a_controller_that_dies_times_out(client, execute, rig, arm_data):
    """Last: it kills the module's controller."""
    rig.controller.reset("normal")
    here = rig.controller.arm()
    started = time.monotonic()
    handle = send(client, execute, away(arm_data, here), arm_data[1],
                  max_velocity_scaling_factor=0.5, max_acceleration_scaling_factor=0.5)
    wait_until_moving(client, rig.controller, here, handle)
    rig.kill_controller()
    status, result = result_of(client, handle)
    assert_timed_out(status, result, time.monotonic() - started, rig, "still ACTIVE")
