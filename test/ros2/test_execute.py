"""~/execute on ROS 2 against a FollowJointTrajectory controller written here (it
follows each trajectory in time and publishes the arm's joint_states): the arm
reaches the goal; an object added on the rest of the motion stops it with STOPPED
before the object is reached (by the independent dense check of what the arm did);
with `replan` the arm goes on around the object to the goal."""
import threading
import time

import numpy as np
import pytest
from control_msgs.action import FollowJointTrajectory
from moveit_msgs.msg import CollisionObject
from rclpy.action import ActionClient, ActionServer, CancelResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from latent_geodesics.action import ExecuteGeodesic
from latent_geodesics.msg import Endpoint
from latent_geodesics.serving.trajectory import position_at
from latent_geodesics.srv import GetScene, GraphGeodesic
from latent_geodesics.world.scene import Scene, Shape, WorldObject
from latent_geodesics.world.verification import dense_collisions

from .test_scene import (
    DENSE_STEP,
    GOAL,
    LATCHED,
    RADIUS,
    ROOT_FRAME,
    SCENE_QOS,
    START,
    URDF,
    link_position,
    positions,
    publish,
    sphere_object,
)

S = "/exec_server/"
ARM = "/exec_arm/"
# Slow motions: the ball arrives seconds before the arm would reach it, even on a busy
# machine (the stop itself takes milliseconds: see the stop test's result).
SCALING = dict(max_velocity_scaling_factor=0.1, max_acceleration_scaling_factor=0.1)


class FakeController(Node):
    """A joint trajectory controller: follows each goal's trajectory in time (linear
    between its points), publishes joint_states at 100 Hz, stops where it is on a
    cancel, and records every position it passed."""

    def __init__(self, names, initial):
        super().__init__("fake_exec_controller")
        self.names, self.position = list(names), np.array(initial, dtype=float)
        self.lock, self.history = threading.Lock(), []
        group = ReentrantCallbackGroup()
        self.state_pub = self.create_publisher(JointState, ARM + "joint_states", 10)
        self.action = ActionServer(self, FollowJointTrajectory, ARM + "follow_joint_trajectory",
                                   execute_callback=self.follow, callback_group=group,
                                   cancel_callback=lambda handle: CancelResponse.ACCEPT)
        self.create_timer(0.01, self.publish, callback_group=group)

    def arm(self):
        with self.lock:
            return self.position.copy()

    def publish(self):
        msg = JointState(name=self.names, position=self.arm().tolist())
        msg.header.stamp = self.get_clock().now().to_msg()
        self.state_pub.publish(msg)

    def follow(self, handle):
        times, path = timeline(handle.request.trajectory, self.names)
        started = time.monotonic()
        while not handle.is_cancel_requested:
            elapsed = time.monotonic() - started
            with self.lock:
                self.position = np.asarray(position_at(times, path, elapsed), dtype=float)
                self.history.append(self.position.copy())
            if elapsed * 1e9 >= times[-1]:
                handle.succeed()
                return FollowJointTrajectory.Result(
                    error_code=FollowJointTrajectory.Result.SUCCESSFUL)
            time.sleep(0.005)
        handle.canceled()
        return FollowJointTrajectory.Result(error_string="cancelled")


def timeline(trajectory, names):
    """(times in ns, positions in names' order) of a JointTrajectory's points: what a
    test controller follows."""
    order = [list(trajectory.joint_names).index(n) for n in names]
    times = [p.time_from_start.sec * 10 ** 9 + p.time_from_start.nanosec
             for p in trajectory.points]
    return times, [[p.positions[i] for i in order] for p in trajectory.points]


@pytest.fixture(scope="module")
def arm(client, arm_data):
    q, names = arm_data
    controller = FakeController(names, q[START])
    spinner = MultiThreadedExecutor(num_threads=4)
    spinner.add_node(controller)
    thread = threading.Thread(target=spinner.spin, daemon=True)
    thread.start()
    yield controller
    spinner.shutdown()
    controller.destroy_node()


@pytest.fixture(scope="module")
def server(fixture_dir, start_node, client, arm):
    urdf_pub = client.node.create_publisher(String, "/exec_test/robot_description", LATCHED)
    urdf_pub.publish(String(data=URDF))
    node = start_node("server", "--ros-args", "-r", "__node:=exec_server",
                      "-r", "robot_description:=/exec_test/robot_description",
                      "-r", "joint_states:=%sjoint_states" % ARM,
                      "-r", "collision_object:=/exec_test/collision_object",
                      "-p", "model_dir:=%s" % (fixture_dir / "fixture_model"),
                      "-p", "device:=cpu", "-p", "robot_description_wait:=20.0",
                      "-p", "controller_action:=%sfollow_joint_trajectory" % ARM,
                      "-p", "goal_tolerance:=0.02", "-p", "controller_wait:=30.0",
                      # a short motion on a busy machine may finish later than MoveIt's
                      # 1.2 x duration + 0.5 s (the time-out is test_execute_faults')
                      "-p", "allowed_goal_duration_margin:=10.0",
                      # a replan reads joint_states right after the stop: on a loaded test
                      # machine the server's callback may lag a second behind them
                      "-p", "joint_states_max_age:=3.0", name="exec_server")
    client.wait(GetScene, S + "scene")
    yield node
    assert node.stop() == 0, node.output()[-3000:]   # a clean SIGINT
    client.node.destroy_publisher(urdf_pub)


@pytest.fixture(scope="module")
def execute(client, server):
    action = ActionClient(client.node, ExecuteGeodesic, S + "execute")
    assert action.wait_for_server(timeout_sec=60)
    return action


def run(client, execute, goal, during=None, **fields):
    """Send ~/execute's goal; during(feedback) is called on each feedback. The final
    (status, result) and the feedback states seen."""
    states = []

    def on_feedback(msg):
        states.append(msg.feedback.state)
        if during is not None:
            during(msg.feedback)
    sent = execute.send_goal_async(ExecuteGeodesic.Goal(
        goal=Endpoint(joint_names=goal[1], positions=goal[0].tolist()), **fields),
        feedback_callback=on_feedback)
    handle = client.spin_until(sent, 30)
    assert handle is not None and handle.accepted
    answer = client.spin_until(handle.get_result_async(), 180)
    assert answer is not None, "~/execute did not finish"
    return answer.status, answer.result, states


def test_executes_from_the_current_state_to_the_goal(server, client, execute, arm, arm_data):
    q, names = arm_data
    status, result, states = run(client, execute, (q[GOAL], names))
    assert result.success and result.error_code == 0, result.message
    assert status == 4 and "planning" in states and "executing" in states   # SUCCEEDED
    assert (result.trajectory.header.stamp.sec, result.trajectory.header.stamp.nanosec) == (0, 0)
    assert np.allclose(positions(result)[0], q[START], atol=0.01)
    assert np.abs(arm.arm() - q[GOAL]).max() < 0.02


def ball_on(client, names, start, goal, late=False):
    """The ball where the served motion's hand passes farthest from both ends, or with
    `late` the last place still 0.7 of that far (the arm reaches it seconds after it is
    added, even when a busy machine delays the scene update; a replan then starts clear
    of it)."""
    res = client.call(GraphGeodesic, S + "graph_geodesic", timeout=120,
                      start=Endpoint(joint_names=names, positions=start.tolist()),
                      goal=Endpoint(joint_names=names, positions=goal.tolist()), **SCALING)
    assert res.success, res.message
    hand = link_position(positions(res), names, "panda_link7")
    away = np.minimum(np.linalg.norm(hand - hand[0], axis=1),
                      np.linalg.norm(hand - hand[-1], axis=1))
    if late:
        return hand[int(np.flatnonzero(away >= 0.7 * away.max())[-1])]
    return hand[int(np.argmax(away))]


def add_when_moving(client, centre, arm, names):
    """(a feedback callback that ADDs the ball once the arm has moved 0.3 s, the list
    it marks that in: the time and how far the hand then was from the ball). The
    publisher is matched first: the callback only publishes."""
    pub = client.node.create_publisher(CollisionObject, "/exec_test/collision_object",
                                       SCENE_QOS)
    client.spin_for(30, until=lambda: pub.get_subscription_count() > 0)
    added = []

    def during(feedback):
        if feedback.state == "executing" and feedback.time_from_start > 0.3 and not added:
            pub.publish(sphere_object("ball", centre))
            hand = link_position(arm.arm()[None], names, "panda_link7")[0]
            added.append((feedback.time_from_start, np.linalg.norm(hand - centre)))
    return during, added


def ball_scene(centre):
    pose = np.eye(4)
    pose[:3, 3] = centre
    return Scene(ROOT_FRAME, [WorldObject("ball", pose, (Shape.sphere(RADIUS),))])


def test_an_object_added_mid_motion_stops_the_arm_before_it(server, client, execute, arm,
                                                            arm_data):
    q, names = arm_data
    here, goal = arm.arm(), q[START]
    centre = ball_on(client, names, here, goal)
    during, added = add_when_moving(client, centre, arm, names)
    start_history = len(arm.history)
    status, result, states = run(client, execute, (goal, names), during, **SCALING)
    assert added, ("the arm never moved 0.3 s", status, result.message, states)
    assert status == 6 and result.error_code == ExecuteGeodesic.Result.STOPPED, result.message
    assert result.message.startswith("stopped: ball on the path at t = "), result.message
    stopped = arm.arm()
    client.spin_for(0.5)
    assert np.abs(arm.arm() - stopped).max() < 1e-9       # not moving any more
    assert np.abs(stopped - here).max() > 1e-3            # it had moved
    assert np.abs(stopped - goal).max() > 0.05            # and is not at the goal
    # The motion sent would have gone through the ball; what the arm did stayed clear.
    assert dense_collisions(URDF, names, ball_scene(centre), positions(result),
                            spacing=DENSE_STEP).collides
    done = np.array(arm.history[start_history:])
    dense = dense_collisions(URDF, names, ball_scene(centre), done, spacing=DENSE_STEP)
    assert not dense.collides and dense.clearance > 0, dense
    publish(client, CollisionObject, "/exec_test/collision_object",
            sphere_object("ball", centre, operation=CollisionObject.REMOVE))


def test_with_replan_the_arm_goes_around_the_object_to_the_goal(server, client, execute, arm,
                                                                arm_data):
    q, names = arm_data
    client.spin_for(10, until=lambda: not client.call(GetScene, S + "scene").object_ids)
    # From the far end again: the ball then lies where the previous test found it
    # seconds ahead of the arm, not wherever that test happened to stop it.
    assert run(client, execute, (q[GOAL], names))[1].success
    here, goal = arm.arm(), q[START]
    centre = ball_on(client, names, here, goal, late=True)
    during, added = add_when_moving(client, centre, arm, names)
    start_history = len(arm.history)
    status, result, states = run(client, execute, (goal, names), during, replan=True,
                                 **SCALING)
    assert added and "replanning" in states, states
    assert status == 4 and result.success, (result.message, "added (s, m from hand):", added)
    assert np.abs(arm.arm() - goal).max() < 0.02
    done = np.array(arm.history[start_history:])
    dense = dense_collisions(URDF, names, ball_scene(centre), done, spacing=DENSE_STEP)
    assert not dense.collides, dense
