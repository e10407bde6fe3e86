"""MoveIt's messages through the ROS-free core (unit tests, with stand-ins for the
messages): CollisionObject.operation is a `byte`, which rclpy gives as one byte
(b'\\x00' for ADD) and ROS 1 as an int, both read alike; a message the reading refuses
is a refused scene update naming the object, not an internal error."""
from types import SimpleNamespace as Msg

import numpy as np
import pytest

from latent_geodesics.serving.service import GeodesicService
from latent_geodesics.serving.world import RobotWorld, WorldSettings
from latent_geodesics.world.moveit import ADD, MOVE, REMOVE, apply, change_of, operation_of
from latent_geodesics.world.scene import Scene, SceneError


def pose(x=0.0):
    return Msg(position=Msg(x=x, y=0.0, z=0.5), orientation=Msg(x=0.0, y=0.0, z=0.0, w=1.0))


def ball(operation, x=0.5):
    return Msg(id="ball", operation=operation, header=Msg(frame_id="base"), pose=pose(x),
               primitives=[Msg(type=2, dimensions=[0.05])], primitive_poses=[pose()],
               meshes=[], mesh_poses=[], planes=[])


def root(frame_id):
    return np.eye(4) if frame_id == "base" else None


@pytest.mark.parametrize("as_byte", [False, True])
def test_ros2_byte_operations_read_as_ros1_numbers(as_byte):
    code = (lambda op: bytes([op])) if as_byte else (lambda op: op)
    assert operation_of(ball(code(MOVE))) == MOVE
    scene = apply(Scene("base"), [change_of(ball(code(ADD)), root)])
    assert list(scene.object_ids) == ["ball"]
    moved = apply(scene, [change_of(ball(code(MOVE), x=0.7), root)])
    assert moved.objects["ball"].pose[0, 3] == pytest.approx(0.7)
    assert not apply(moved, [change_of(ball(code(REMOVE)), root)]).objects
    with pytest.raises(SceneError, match="operation 9 is not"):
        change_of(ball(code(9)), root)


def test_a_refused_message_or_file_is_a_refused_update_not_an_internal_error(tmp_path):
    world = RobotWorld(WorldSettings(0.02, 0.1, 2.0, 0.005), frame="base")
    errors = []
    service = GeodesicService(Msg(world=world), None, lambda: 0.0, errors.append)
    bad_frame = ball(ADD)
    bad_frame.header.frame_id = "camera"
    scene = Msg(is_diff=True, world=Msg(collision_objects=[ball(ADD), bad_frame]),
                robot_state=Msg(attached_collision_objects=[]))
    bad_file = tmp_path / "scene.yaml"
    bad_file.write_text("objects: [{id: shelf}]")
    for reply in (service.collision_object(bad_frame, root),
                  service.planning_scene(scene, root), service.load_scene(str(bad_file))):
        assert not reply.success and "scene update refused" in reply.message, reply.message
    assert "object ball: frame 'camera' is unknown" in service.collision_object(
        bad_frame, root).message
    assert not errors and not world.scene.objects and world.scene.version == 0
    assert service.collision_object(ball(bytes([ADD])), root).success
    assert list(world.scene.object_ids) == ["ball"]
