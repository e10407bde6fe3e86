"""GeodesicService without ROS: what both front ends answer, with requests read by
field name exactly as the ROS 1 and ROS 2 messages carry them."""
import os
import shutil
from types import SimpleNamespace as Msg

import numpy as np
import pytest

from latent_geodesics.errors import ConfigError
from latent_geodesics.serving.engine import Engine, Settings
from latent_geodesics.serving.robot_state import JointStateBuffer
from latent_geodesics.serving.service import GeodesicService, check_feedback_every

EMPTY = Msg(joint_names=[], positions=[], latent=[])


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def service(arm_model_dir, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("service") / "model")
    shutil.copytree(arm_model_dir, model_dir, ignore=shutil.ignore_patterns("graph_*.npz"))
    engine = Engine(model_dir, Settings(device="cpu"), log=lambda *_: None)
    errors = []
    state = JointStateBuffer(1.0, keep=engine.served.joint_names)
    svc = GeodesicService(engine, state, Clock(), errors.append, feedback_every=5)
    svc.errors = errors
    return svc


@pytest.fixture(scope="module")
def poses(arm):
    return arm.data[::97][:6]


def ends(service, a, b):
    names = list(service.engine.served.joint_names)
    return (Msg(joint_names=names, positions=list(a), latent=[]),
            Msg(joint_names=names, positions=list(b), latent=[]))


def geodesic_request(start, goal, **more):
    return Msg(start=start, goal=goal, max_velocity_scaling_factor=0.0,
               max_acceleration_scaling_factor=0.0, publish=False, stamp_now=False, **more)


def test_an_empty_start_is_the_robot_state_and_a_stale_one_is_refused(service, poses):
    names = list(service.engine.served.joint_names)
    refused = service.graph_geodesic(geodesic_request(EMPTY, ends(service, poses[0],
                                                                  poses[1])[1]))
    assert not refused.success and "joint_states" in refused.message
    service.joint_state.update(names, poses[0], service.clock(), received=service.clock())
    served = service.graph_geodesic(geodesic_request(EMPTY, ends(service, poses[0],
                                                                 poses[1])[1]))
    assert served.success, served.message
    assert np.allclose(served.result.positions[0], poses[0])
    service.clock.now += 5.0    # joint_states now older than the 1 s allowed
    stale = service.graph_geodesic(geodesic_request(EMPTY, ends(service, poses[0],
                                                                poses[1])[1]))
    assert not stale.success and "old" in stale.message


def test_replies_carry_the_response_fields_as_plain_data(service, poses):
    start, goal = ends(service, poses[2], poses[3])
    encoded = service.encode(start)
    assert encoded.success and encoded.fields["latent_dim"] == service.engine.served.model.z_dim
    decoded = service.decode(Msg(latent=encoded.fields["latent"]))
    assert decoded.fields["joint_names"] == list(service.engine.served.joint_names)
    reply = service.graph_geodesic(geodesic_request(start, goal))
    fields = reply.fields
    assert reply.message == "graph geodesic, %d points" % len(reply.result.latent)
    assert len(fields["latent_path"]) == fields["latent_dim"] * len(reply.result.latent)
    lengths = service.geodesic_lengths(Msg(starts=[start], goals=[goal, start]))
    assert lengths.success and (lengths.fields["rows"], lengths.fields["cols"]) == (1, 2)
    assert lengths.fields["lengths"][1] < 1e-5   # a start to itself
    # The graph's length of the pair; the served path is that path shortened.
    assert lengths.fields["lengths"][0] >= fields["length"] * (1 - 1e-6)


def test_bad_requests_fail_with_their_reason_and_count_in_health(service):
    before = service.health.summary()[:2]
    reply = service.decode(Msg(latent=[float("nan")] * 2))
    assert not reply.success and "NaN" in reply.message
    broken = service.encode(Msg(joint_names=None, positions=None))   # not even lists
    assert not broken.success and broken.message.startswith("internal error")
    assert service.errors and "encode failed" in service.errors[-1]
    served, failed = service.health.summary()[:2]
    assert (served - before[0], failed - before[1]) == (2, 2)


def test_refinement_feedback_and_cancel(service, poses):
    start, goal = ends(service, poses[0], poses[4])
    seen = []
    request = geodesic_request(start, goal, mode="finite-difference", init="graph",
                               max_iterations=30)
    done = service.refine(request, lambda i, length: seen.append(i), lambda: False)
    assert done.success and done.message.startswith("NN geodesic after")
    assert seen and all(i % 5 == 0 for i in seen)
    cancelled = service.refine(request, lambda *_: None, lambda: True)
    assert cancelled.cancelled and not cancelled.success
    assert cancelled.message == "cancelled; best curve so far"
    assert cancelled.result is not None and cancelled.fields["length"] > 0


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "10"])
def test_feedback_every_is_refused_below_one_not_clamped(value):
    with pytest.raises(ConfigError, match="feedback_every"):
        check_feedback_every(value)


def collision_object(object_id, frame, position):
    pose = Msg(position=Msg(x=position[0], y=position[1], z=position[2]),
               orientation=Msg(x=0.0, y=0.0, z=0.0, w=1.0))
    sphere = Msg(type=2, dimensions=[0.05])
    identity = Msg(position=Msg(x=0.0, y=0.0, z=0.0), orientation=pose.orientation)
    return Msg(id=object_id, operation=0, header=Msg(frame_id=frame), pose=pose,
               primitives=[sphere], primitive_poses=[identity], meshes=[], mesh_poses=[],
               planes=[])


def test_a_scene_change_that_cannot_be_read_is_refused_not_an_internal_error(service, tmp_path):
    version = service.current_scene().version
    reply = service.collision_object(collision_object("lost", "nowhere", (0, 0, 0)),
                                     lambda frame: None)
    assert not reply.success
    assert "scene update refused" in reply.message and "lost" in reply.message
    assert "nowhere" in reply.message and "internal error" not in reply.message
    reply = service.load_scene(str(tmp_path / "missing.yaml"))
    assert not reply.success and "scene file cannot be read" in reply.message
    assert "internal error" not in reply.message
    assert service.current_scene().version == version   # nothing applied
    assert not [e for e in service.errors if "SceneError" in e]


def test_an_object_far_from_every_edge_leaves_the_motion_as_it_was(arm_model_dir, poses):
    """No graph edge comes near the object: nothing to decode (once an internal error)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "urdf", "panda.urdf")) as f:
        urdf = f.read()
    engine = Engine(arm_model_dir, Settings(device="cpu"), log=lambda *_: None,
                    robot_description=urdf)
    svc = GeodesicService(engine, JointStateBuffer(1.0), Clock(), print)
    request = geodesic_request(*ends(svc, poses[1], poses[2]))
    before = svc.graph_geodesic(request)
    reply = svc.collision_object(collision_object("far", "", (-3.0, 0, 3.0)),
                                 lambda frame: np.eye(4))
    assert reply.success, reply.message
    after = svc.graph_geodesic(request)
    assert before.success and after.success, after.message
    np.testing.assert_allclose(after.result.positions, before.result.positions)
    assert after.fields["length"] == pytest.approx(before.fields["length"])
    assert after.result.summary().clearance_object == "far"
