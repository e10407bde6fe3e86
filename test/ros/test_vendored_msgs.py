"""The vendored planning-scene messages (third_party/README.md) are upstream's on the
wire: a ROS 1 node connects only where both ends' md5sums agree, so each generated
class must carry the md5sum that ROS Noetic's own packages publish.

Run in the ROS environment (test/run_rostests.sh); needs no roscore."""
import moveit_msgs.msg as moveit_msg
import moveit_msgs.srv as moveit_srv
import object_recognition_msgs.msg as orm_msg
import octomap_msgs.msg as octomap_msg
import pytest

# The md5sums as Noetic's generated code has them, literally:
#  moveit_msgs: the generated Python (genpy, `_md5sum = "..."`) of moveit_msgs 0.11.2, Noetic's
#    `master` branch built from source, in github.com/Harighs/Robot-Arm-for-Sorting-Mechanism-
#    using-ROS-and-YOLOv4 (commit 790ab7b), ROS_Master_Package/ws_moveit/devel/.private/
#    moveit_msgs/lib/python3/dist-packages/moveit_msgs/{msg,srv}/_*.py (0.11.2 to 0.11.4 changed
#    only comments of these files, which md5sums ignore);
#  octomap_msgs, object_recognition_msgs: the rosserial headers (`getMD5()`) generated from a
#    ROS 1 installation in github.com/maHidaka/ros_face (commit fa3d963),
#    ros_face_Arduino/lib/ros_lib/{octomap_msgs,object_recognition_msgs}/*.h.
UPSTREAM_MD5 = {
    "moveit_msgs/CollisionObject": "dbba710596087da521c07564160dfccb",
    "moveit_msgs/PlanningScene": "acfc50bcfd6c7b978066bfa7c786002c",
    "moveit_msgs/PlanningSceneWorld": "79457311445f53d410ab4e3781de8447",
    "moveit_msgs/AttachedCollisionObject": "30199ef516f64c8bc1edb1084ce4584e",
    "moveit_msgs/RobotState": "968156f4aa4cb4018f1f2293eebcea8f",
    "moveit_msgs/AllowedCollisionMatrix": "aedce13587eef0d79165a075659c1879",
    "moveit_msgs/AllowedCollisionEntry": "90d1ae1850840724bb043562fe3285fc",
    "moveit_msgs/LinkPadding": "b3ea75670df55c696fedee97774d5947",
    "moveit_msgs/LinkScale": "19faf226446bfb2f645a4da6f2a56166",
    "moveit_msgs/ObjectColor": "ec3bd6f103430e64b2ae706a67d8488e",
    "moveit_msgs/PlanningSceneComponents": "bc993e784476960b918b6e7ad5bb58ce",
    "moveit_msgs/GetPlanningScene": "65cf69d3e7a0342e16374024d4eeef65",
    "moveit_msgs/GetPlanningSceneRequest": "d81da6c0e5e015646a4efe344f33d7dc",
    "moveit_msgs/GetPlanningSceneResponse": "532b54e7c502b73178625025da63b084",
    "moveit_msgs/ApplyPlanningScene": "d4d1599e0b6f71a6a8a10cb34780619c",
    "moveit_msgs/ApplyPlanningSceneRequest": "532b54e7c502b73178625025da63b084",
    "moveit_msgs/ApplyPlanningSceneResponse": "358e233cde0c8a8bcfea4ce193f8fc15",
    "octomap_msgs/Octomap": "9a45536b45c5e409cd49f04bb2d9999f",
    "octomap_msgs/OctomapWithPose": "20b380aca6a508a657e95526cddaf618",
    "object_recognition_msgs/ObjectType": "ac757ec5be1998b0167e7efcda79e3cf",
}


def generated(type_name):
    package, name = type_name.split("/")
    modules = {"moveit_msgs": (moveit_msg, moveit_srv), "octomap_msgs": (octomap_msg,),
               "object_recognition_msgs": (orm_msg,)}[package]
    return next(getattr(m, name) for m in modules if hasattr(m, name))


@pytest.mark.parametrize("type_name", sorted(UPSTREAM_MD5))
def test_generated_md5sum_is_upstream_noetics(type_name):
    cls = generated(type_name)
    assert cls._type == type_name
    assert cls._md5sum == UPSTREAM_MD5[type_name]


def test_a_collision_object_round_trips_as_moveit_sends_it():
    from io import BytesIO

    from shape_msgs.msg import SolidPrimitive
    sent = moveit_msg.CollisionObject(id="box", operation=moveit_msg.CollisionObject.ADD)
    sent.header.frame_id = "panda_link0"
    sent.primitives = [SolidPrimitive(type=SolidPrimitive.BOX, dimensions=[0.1, 0.2, 0.3])]
    sent.primitive_poses = [sent.pose]
    buffer = BytesIO()
    sent.serialize(buffer)
    got = moveit_msg.CollisionObject().deserialize(buffer.getvalue())
    assert (got.id, got.operation, got.header.frame_id) == ("box", 0, "panda_link0")
    assert list(got.primitives[0].dimensions) == [0.1, 0.2, 0.3]
    scene = moveit_msg.PlanningScene(is_diff=True)
    scene.world.collision_objects.append(got)
    assert scene.world.collision_objects[0].primitives[0].type == SolidPrimitive.BOX
