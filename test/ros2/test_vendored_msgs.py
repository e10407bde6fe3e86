"""The planning-scene messages, FollowJointTrajectory and TFMessage that ros2/setup.sh
generates from third_party/ros2/ (no Jazzy wheel has them) are upstream's: the fields are the
vendored definitions', and the type hashes, which DDS discovery compares between two
ends (RIHS01), are those that upstream's own builds publish."""
from pathlib import Path

import pytest
from control_msgs.action import FollowJointTrajectory
from moveit_msgs.msg import (
    AttachedCollisionObject,
    CollisionObject,
    PlanningScene,
    PlanningSceneComponents,
    PlanningSceneWorld,
    RobotState,
)
from moveit_msgs.srv import ApplyPlanningScene, GetPlanningScene
from rosidl_adapter.msg import MSG_TYPE_TO_IDL
from rosidl_adapter.parser import parse_message_string
from tf2_msgs.msg import TFMessage

VENDORED = Path(__file__).resolve().parents[2] / "third_party" / "ros2"

# RIHS01 hashes as upstream's generated C has them (`{1, {0x74, 0xb0, ...}}`), literally:
#  moveit_msgs: github.com/orka375/moveit2 (commit 5d41409), a build of moveit_msgs 2.7.1
#    (its msg and srv files here as in 2.6.0), install/moveit_msgs/include/moveit_msgs/
#    moveit_msgs/{msg,srv}/detail/*__description.c. A hash covers every type the message
#    holds, so these also vouch for octomap_msgs, object_recognition_msgs and shape_msgs;
#  control_msgs: github.com/saahu27/aprs (commit 4013b14), aprs_ws/build/control_msgs/
#    rosidl_generator_c/control_msgs/action/detail/follow_joint_trajectory__description.c;
#  tf2_msgs: tf2_msgs/msg/detail/tf_message__struct.h (TYPE_HASH) as a Jazzy build of
#    geometry2 generates it, and the EXPECTED_HASH two packages built against it embed
#    (in their *__description.c for messages holding a TFMessage): all three agree.
UPSTREAM_HASH = {
    CollisionObject:
        "RIHS01_74b0acd6d56be032bf4f764b2c2633f50588b5fb2bd71e97206c59052747cf7e",
    PlanningScene:
        "RIHS01_0f58540ad5eab4b9ea827d53b763c793d8cabd202b3b301fcee25afa4ce1bd80",
    PlanningSceneWorld:
        "RIHS01_e08e6a4a81ca6b6a6953ac758dadc2c949555093efea6a9a22d9accf62c2c099",
    RobotState:
        "RIHS01_7c516dc15713e545cb2836c5ca745fbdcfcc10de4855a41c83e6b4bf1afc3f83",
    GetPlanningScene.Request:
        "RIHS01_ac8ce45f7638bcc6d6661f66e836e4edd218107682f68e3292dac1f79f29c1ec",
    GetPlanningScene.Response:
        "RIHS01_8a2b63777b386eeffec08730a19dae73e4950fec294825d9d53f24b935e6ec95",
    ApplyPlanningScene.Request:
        "RIHS01_4303c6065226e57f263fe7e1c03df94ea3ddbc120001cbbc4e757d7801da0a56",
    FollowJointTrajectory.Goal:
        "RIHS01_8a9060704b269608f5a340934cc26e66869dd14bdac29e2e7fd9ec8b9882d205",
    FollowJointTrajectory.Result:
        "RIHS01_8002e99ed2c14c6faa522f2a93c26d744c5982f254f9e98ff9c6f19789bdb220",
    FollowJointTrajectory.Feedback:
        "RIHS01_3fd0aaecf71725121ae1ff7f01098a5e0da581e672be18a6b2c286cb43d96b49",
    FollowJointTrajectory.Impl.FeedbackMessage:
        "RIHS01_80398fcb9674a79081a9906e2ccf0c804dd7cb15e22e362e606ee87186beab71",
    TFMessage:
        "RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087",
}


@pytest.mark.parametrize("kind", list(UPSTREAM_HASH), ids=lambda k: k.__qualname__)
def test_the_type_hash_a_publisher_announces_is_upstreams(client, kind):
    topic = "vendored_hash_" + kind.__qualname__.replace(".", "_")
    publisher = client.node.create_publisher(kind, topic, 1)
    try:
        info = client.node.get_publishers_info_by_topic(topic)
        assert [str(i.topic_type_hash) for i in info] == [UPSTREAM_HASH[kind]]
    finally:
        client.node.destroy_publisher(publisher)


def expected_fields(package, name):
    """(field, IDL type) in order, as rosidl generates them from the vendored .msg."""
    text = (VENDORED / package / "msg" / (name + ".msg")).read_text()
    spec = parse_message_string(package, name, text)
    fields = []
    for field in spec.fields:
        base = field.type.type
        if field.type.pkg_name:   # a message: same package where the .msg names none
            base = "%s/%s" % (field.type.pkg_name, base)
        else:
            base = MSG_TYPE_TO_IDL[base]
        fields.append((field.name, "sequence<%s>" % base if field.type.is_array else base))
    return fields, {c.name: c.value for c in spec.constants}


@pytest.mark.parametrize("kind", [CollisionObject, PlanningScene, PlanningSceneWorld,
                                  AttachedCollisionObject, RobotState,
                                  PlanningSceneComponents], ids=lambda k: k.__name__)
def test_generated_fields_and_constants_are_the_vendored_definitions(kind):
    fields, constants = expected_fields("moveit_msgs", kind.__name__)
    assert list(kind.get_fields_and_field_types().items()) == fields
    for name, value in constants.items():
        got = getattr(kind, name)
        assert (got[0] if isinstance(got, bytes) else got) == value, name


def test_follow_joint_trajectory_goal_has_upstreams_tolerances():
    goal = FollowJointTrajectory.Goal().get_fields_and_field_types()
    assert goal["path_tolerance"] == "sequence<control_msgs/JointTolerance>"
    assert goal["component_goal_tolerance"] == "sequence<control_msgs/JointComponentTolerance>"
    assert FollowJointTrajectory.Result.PATH_TOLERANCE_VIOLATED == -4
