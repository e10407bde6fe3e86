"""MoveIt's messages as ROS 2 (rclpy) holds them: CollisionObject.operation is a
`byte`, which rclpy gives as one byte (b'\\x00' for ADD) and ROS 1 as an int; both are
read alike (unit test of the ROS-free reading, with stand-ins for the messages)."""
from types import SimpleNamespace as Msg

import numpy as np
import pytest

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
