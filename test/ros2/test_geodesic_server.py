"""The ROS 2 geodesic_server, started as the README shows, called as a user calls it:
every service (bad inputs refused, the node still serving), the action with
feedback and cancel, an empty start from joint_states, parameters from the ROS 1
YAML with descriptors and ranges, a reload under concurrent calls, and a clean SIGINT."""
import signal
import threading
import time

import numpy as np
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters
from rclpy.action import ActionClient
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState

from latent_geodesics.action import NNGeodesic
from latent_geodesics.msg import Endpoint
from latent_geodesics.ros2.parameters import ServiceQueue
from latent_geodesics.serving.engine import REQUEST_TIME_SETTINGS, Settings
from latent_geodesics.serving.execution import ExecutionSettings
from latent_geodesics.serving.service import NodeSettings
from latent_geodesics.settings import specs
from latent_geodesics.srv import (
    Decode,
    Encode,
    GeodesicLengths,
    GraphGeodesic,
    MagnificationFactor,
    Reload,
)

S = "/geodesic_server/"


@pytest.fixture(scope="module")
def server(fixture_dir, start_node, client):
    node = start_node("server", "--params-file", "config/geodesic_server.yaml", "--ros-args",
                      "-p", "model_dir:=%s" % (fixture_dir / "fixture_model"),
                      "-p", "device:=cpu", "-p", "robot_description_wait:=0.5",
                      name="server")
    client.wait(Encode, S + "encode")
    return node


def ends(arm_data, i, j):
    q, names = arm_data
    return (Endpoint(joint_names=names, positions=q[i].tolist()),
            Endpoint(joint_names=names, positions=q[j].tolist()))


def test_graph_geodesic_is_a_trajectory_from_start_to_goal(server, client, arm_data):
    start, goal = ends(arm_data, 0, 700)
    res = client.call(GraphGeodesic, S + "graph_geodesic", start=start, goal=goal)
    assert res.success, res.message
    points = res.trajectory.points
    assert len(points) >= 2 and res.stats.num_points == len(points)
    assert np.allclose(points[0].positions, start.positions, atol=1e-9)
    assert np.allclose(points[-1].positions, goal.positions, atol=1e-9)
    assert (res.trajectory.header.stamp.sec, res.trajectory.header.stamp.nanosec) == (0, 0)
    ns = [p.time_from_start.sec * 10 ** 9 + p.time_from_start.nanosec for p in points]
    assert all(b > a for a, b in zip(ns, ns[1:]))
    assert res.length > 0 and res.stats.data_distance >= 0


def test_encode_decode_lengths_and_mf(server, client, arm_data):
    q, names = arm_data
    enc = client.call(Encode, S + "encode", joint_names=names, positions=q[:3].ravel().tolist())
    assert enc.success and len(enc.latent) == 3 * enc.latent_dim
    dec = client.call(Decode, S + "decode", latent=list(enc.latent))
    assert dec.success and list(dec.joint_names) == names
    assert np.abs(np.array(dec.positions).reshape(3, -1) - q[:3]).max() < 1.0
    mf = client.call(MagnificationFactor, S + "magnification_factor", latent=list(enc.latent))
    assert mf.success and len(mf.values) == 3 and np.all(np.array(mf.values) > 0)
    start, goal = ends(arm_data, 0, 700)
    _, other = ends(arm_data, 0, 900)
    lengths = client.call(GeodesicLengths, S + "geodesic_lengths", starts=[start],
                          goals=[goal, other])
    assert lengths.success and (lengths.rows, lengths.cols) == (1, 2)
    assert np.all(np.array(lengths.lengths) > 0)


def bad_requests(arm_data):
    q, names = arm_data
    good = q[0].tolist()
    far = (q[0] + 50.0).tolist()
    return {"NaN": (names, [float("nan")] + good[1:]),
            "inf": (names, [float("inf")] + good[1:]),
            "wrong dimension": (names, good[:-1]),
            "unknown joint": (names[:-1] + ["no_such_joint"], good),
            "far outside the data": (names, far)}


@pytest.mark.parametrize("case", ["NaN", "inf", "wrong dimension", "unknown joint",
                                  "far outside the data", "start == goal", "empty goal"])
def test_bad_input_is_refused_and_the_node_keeps_serving(server, client, arm_data, case):
    q, names = arm_data
    goal = Endpoint(joint_names=names, positions=q[700].tolist())
    if case == "start == goal":
        start = goal
    elif case == "empty goal":
        start, goal = Endpoint(joint_names=names, positions=q[0].tolist()), Endpoint()
    else:
        bad_names, bad_positions = bad_requests(arm_data)[case]
        start = Endpoint(joint_names=bad_names, positions=bad_positions)
    res = client.call(GraphGeodesic, S + "graph_geodesic", start=start, goal=goal)
    assert not res.success and len(res.message) > 10, res.message
    enc = client.call(Encode, S + "encode", joint_names=list(start.joint_names),
                      positions=list(start.positions))
    if case not in ("start == goal", "empty goal"):
        assert not enc.success, case
    ok = client.call(GraphGeodesic, S + "graph_geodesic", start=Endpoint(
        joint_names=names, positions=q[0].tolist()), goal=Endpoint(joint_names=names,
                                                                   positions=q[700].tolist()))
    assert ok.success, ok.message


def test_the_same_bad_request_gets_the_same_text_as_on_ros1(server, client):
    # test/ros/test_geodesic_server.py asserts these very texts through ROS 1.
    for latent, text in (([float("nan"), 0.0], "latent holds NaN or inf"),
                         ([0.0] * 3, "latent has 3 values, not a multiple of the dimension 2"),
                         ([], "latent is empty")):
        assert client.call(Decode, S + "decode", latent=latent).message == text


def test_empty_start_is_the_robot_state_from_joint_states(server, client, arm_data):
    q, names = arm_data
    pub = client.node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
    state = JointState(name=names, position=q[5].tolist())

    def publish():
        state.header.stamp = client.node.get_clock().now().to_msg()
        pub.publish(state)
    timer = client.node.create_timer(0.05, publish)
    client.spin_for(1.0)
    try:
        future = client.wait(GraphGeodesic, S + "graph_geodesic").call_async(
            GraphGeodesic.Request(start=Endpoint(), goal=ends(arm_data, 0, 700)[1]))
        res = client.spin_until(future, 60)
    finally:
        client.node.destroy_timer(timer)
        client.node.destroy_publisher(pub)
    assert res.success, res.message
    assert np.allclose(res.trajectory.points[0].positions, q[5], atol=1e-9)


def send_goal(client, goal, feedback):
    action = ActionClient(client.node, NNGeodesic, S + "nn_geodesic")
    assert action.wait_for_server(timeout_sec=30)
    handle = client.spin_until(action.send_goal_async(
        goal, feedback_callback=lambda msg: feedback.append(msg.feedback)), 30)
    assert handle.accepted
    return handle


def set_parameter(client, name, value, kind):
    field = {ParameterType.PARAMETER_DOUBLE: "double_value",
             ParameterType.PARAMETER_INTEGER: "integer_value"}[kind]
    value = ParameterValue(type=kind, **{field: value})
    res = client.call(SetParameters, S + "set_parameters",
                      parameters=[Parameter(name=name, value=value)])
    return res.results[0]


def test_refinement_sends_feedback_and_succeeds(server, client, arm_data):
    start, goal = ends(arm_data, 0, 700)
    # Every second iteration's feedback (the default is every one).
    assert set_parameter(client, "feedback_every", 2,
                         ParameterType.PARAMETER_INTEGER).successful
    feedback = []
    handle = send_goal(client, NNGeodesic.Goal(start=start, goal=goal), feedback)
    result = client.spin_until(handle.get_result_async(), 120)
    assert set_parameter(client, "feedback_every", 1,
                         ParameterType.PARAMETER_INTEGER).successful
    assert result.result.success, result.result.message
    assert feedback and all(f.length > 0 for f in feedback)
    assert [f.iteration for f in feedback] == list(range(2, 2 * len(feedback) + 1, 2))
    refused = set_parameter(client, "feedback_every", 0, ParameterType.PARAMETER_INTEGER)
    assert not refused.successful and "feedback_every" in refused.reason
    assert np.allclose(result.result.trajectory.points[-1].positions, goal.positions)


def test_cancel_stops_a_refinement_and_services_answer_meanwhile(server, client, arm_data):
    # The whole budget (nn_tolerance 0, a writable parameter): only a cancel ends it early.
    assert set_parameter(client, "nn_tolerance", 0.0,
                         ParameterType.PARAMETER_DOUBLE).successful
    start, goal = ends(arm_data, 0, 700)
    feedback = []
    try:
        handle = send_goal(client, NNGeodesic.Goal(start=start, goal=goal,
                                                   mode="finite-difference",
                                                   max_iterations=100000), feedback)
        client.spin_for(60, until=lambda: len(feedback) >= 3)
        assert len(feedback) >= 3, "no feedback while refining"
        started = time.perf_counter()
        enc = client.call(Encode, S + "encode", joint_names=list(start.joint_names),
                          positions=list(start.positions))
        answered = time.perf_counter() - started
        client.spin_until(handle.cancel_goal_async(), 30)
        result = client.spin_until(handle.get_result_async(), 60)
    finally:
        set_parameter(client, "nn_tolerance", 1e-4, ParameterType.PARAMETER_DOUBLE)
    assert enc.success and answered < 5.0, answered
    assert result.status == 5, result.status   # GoalStatus.STATUS_CANCELED
    assert not result.result.success and "cancel" in result.result.message
    assert feedback[-1].iteration < 100000


def test_parameters_are_the_settings_with_descriptors(server, client):
    names = ["k", "metric", "max_joint_step", "nn_iterations", "controller_wait"]
    values = client.call(GetParameters, S + "get_parameters", names=names).values
    defaults = Settings()
    assert values[0].integer_value == defaults.k
    assert values[1].string_value == defaults.metric
    assert values[2].double_value == defaults.max_joint_step
    assert values[3].integer_value == defaults.nn_iterations
    assert values[4].double_value == 5.0   # a ROS 1 YAML value beside Settings
    described = client.call(DescribeParameters, S + "describe_parameters",
                            names=["k", "max_joint_step"]).descriptors
    assert described[0].read_only and described[0].integer_range[0].from_value == 1
    assert not described[1].read_only and "max_joint_step" in REQUEST_TIME_SETTINGS
    refused = set_parameter(client, "k", 5, ParameterType.PARAMETER_INTEGER)
    assert not refused.successful
    refused = set_parameter(client, "max_joint_step", -1.0, ParameterType.PARAMETER_DOUBLE)
    assert not refused.successful


def numeric_settings(*classes):
    return [spec.name for cls in classes for spec in specs(cls) if spec.kind in (int, float)]


def test_every_numeric_parameter_has_a_range_and_a_set_beyond_it_is_refused(server, client):
    names = numeric_settings(Settings, NodeSettings, ServiceQueue, ExecutionSettings)
    described = client.call(DescribeParameters, S + "describe_parameters",
                            names=names).descriptors
    assert len(described) == len(names)   # an undeclared name: no descriptors at all
    for name, desc in zip(names, described):
        ranges = list(desc.integer_range) + list(desc.floating_point_range)
        assert len(ranges) == 1 and ranges[0].to_value <= 1e8, (name, ranges)
        if desc.read_only:
            continue
        beyond = ranges[0].to_value + 1 if desc.integer_range else ranges[0].to_value * 10
        refused = set_parameter(client, name, beyond, desc.type)
        assert not refused.successful and name in refused.reason, (name, refused.reason)
    refused = set_parameter(client, "position_tolerance", 1e300,
                            ParameterType.PARAMETER_DOUBLE)
    assert not refused.successful and "position_tolerance" in refused.reason
    values = client.call(GetParameters, S + "get_parameters",
                         names=["position_tolerance", "service_queue_depth"]).values
    assert values[0].double_value == Settings().position_tolerance
    assert values[1].integer_value == 100   # the default: a request per caller


def test_reload_under_concurrent_calls(server, client, arm_data, fixture_dir):
    start, goal = ends(arm_data, 0, 700)
    failures, answered = [], []
    from latent_geodesics.srv import GraphGeodesic as G  # a second client of its own
    graph = client.node.create_client(G, S + "graph_geodesic")
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            future = graph.call_async(G.Request(start=start, goal=goal))
            while not future.done() and not stop.is_set():
                time.sleep(0.01)
            if future.done():
                res = future.result()
                (answered if res.success else failures).append(res.message)
    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        for model in ("fixture_model_b", "fixture_model"):
            res = client.call(Reload, S + "reload", timeout=120,
                              model_dir=str(fixture_dir / model))
            assert res.success, res.message
            client.spin_for(1.0)
    finally:
        stop.set()
        client.spin_for(2.0)
        thread.join()
    assert answered and not failures, failures[:3]


def test_sigint_shuts_down_cleanly(fixture_dir, start_node, client):
    node = start_node("server", "--ros-args", "-r", "__node:=second_server",
                      "-p", "model_dir:=%s" % (fixture_dir / "fixture_model"),
                      "-p", "device:=cpu", "-p", "robot_description_wait:=0.0",
                      name="second_server")
    client.wait(Encode, "/second_server/encode")
    node.proc.send_signal(signal.SIGUSR1)     # where every thread is, and it serves on
    for _ in range(20):   # the dump reaches the log thread by thread: on a busy machine, later
        client.spin_for(0.5)
        if "run_node" in node.output():
            break
    assert "run_node" in node.output() and node.proc.poll() is None, node.output()[-3000:]
    assert node.stop() == 0, node.output()[-6000:]
    assert "Traceback" not in node.output()
