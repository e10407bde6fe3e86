"""MoveIt's world messages as scene changes: moveit_msgs/CollisionObject (on
/collision_object) and moveit_msgs/PlanningScene (on /planning_scene, diffs or whole
worlds), read by field name, so the ROS 1 and ROS 2 messages (which share their
fields) go through this one reading and nothing here imports ROS.

Objects arrive in any frame: `transform(frame_id)` (the front end's tf2 lookup, or
None where it has none) gives the frame's pose in the robot's root frame as a 4x4
matrix, or None when it is unknown; an object in an unknown frame, or with a shape
this reading does not know, is refused with a SceneError naming it: never dropped
silently, never half applied.
"""
import numpy as np

from latent_geodesics.world.scene import Scene, SceneError, Shape, WorldObject
from latent_geodesics.world.scene import pose_matrix as position_pose

# moveit_msgs/CollisionObject operations and shape_msgs/SolidPrimitive types
ADD, REMOVE, APPEND, MOVE = 0, 1, 2, 3
BOX, SPHERE, CYLINDER, CONE = 1, 2, 3, 4
OPERATIONS = {ADD: "ADD", REMOVE: "REMOVE", APPEND: "APPEND", MOVE: "MOVE"}


def pose_matrix(pose):
    """geometry_msgs/Pose -> 4x4 (scene.pose_matrix); an all-zero quaternion, which
    MoveIt sends for a pose nobody set, is the identity."""
    o, p = pose.orientation, pose.position
    quaternion = [o.x, o.y, o.z, o.w]
    return position_pose([p.x, p.y, p.z], quaternion if any(quaternion) else None)


def operation_of(msg):
    """CollisionObject.operation as a number: its type is `byte`, which ROS 1's messages
    hold as an int and ROS 2's (rclpy) as one byte, b'\\x00' for ADD."""
    value = msg.operation
    if isinstance(value, (bytes, bytearray)):
        return int.from_bytes(value, "little")
    return int(value)


def change_of(msg, transform):
    """One CollisionObject as a function scene -> scene (SceneError when refused)."""
    name = msg.id or "(no id)"
    if not msg.id:
        raise SceneError("a collision object has no id; give every object an id")
    operation = operation_of(msg)
    if operation not in OPERATIONS:
        raise SceneError("object %s: operation %d is not ADD, REMOVE, APPEND or MOVE"
                         % (name, operation))
    if operation == REMOVE:
        return lambda scene: scene.remove(msg.id)
    frame = _frame(msg, transform, name)
    pose = frame @ _object_pose(msg, name)
    if operation == MOVE:
        return lambda scene: scene.move(msg.id, pose)
    shapes = _shapes(msg, name)
    if operation == APPEND:
        # APPEND's shapes are in the message's frame, like ADD's; the scene holds them
        # relative to the object: express them in its pose.
        return lambda scene: scene.append(msg.id, _relative(shapes, pose, scene, msg.id))
    return lambda scene: scene.add(WorldObject(msg.id, pose, tuple(shapes)))


def changes_of_scene(msg, transform):
    """A PlanningScene's world as scene changes: a diff's objects one by one, a whole
    scene (is_diff false) as a clear first. Attached objects and octomaps are not
    read (SceneError names them, so a user knows they were not applied)."""
    changes = [] if msg.is_diff else [lambda scene: scene.remove(None)]
    changes += [change_of(obj, transform) for obj in msg.world.collision_objects]
    attached = getattr(getattr(msg, "robot_state", None), "attached_collision_objects", [])
    if attached:
        raise SceneError("the planning scene attaches %d object(s) to the robot (%s); attached "
                         "objects are not supported: give them as world objects"
                         % (len(attached), ", ".join(a.object.id for a in attached)))
    return changes


def apply(scene, changes):
    """All changes applied in order, or none (the first refusal raises)."""
    for change in changes:
        scene = change(scene)
    return scene


def _frame(msg, transform, name):
    frame_id = msg.header.frame_id
    matrix = transform(frame_id) if transform is not None else None
    if matrix is None:
        raise SceneError("object %s: frame '%s' is unknown (not the robot's root frame, and no "
                         "transform to it is known); give its pose in the robot's root "
                         "frame or publish the frame on tf" % (name, frame_id))
    return np.asarray(matrix, dtype=np.float64)


def _object_pose(msg, name):
    pose = getattr(msg, "pose", None)   # moveit_msgs >= 0.11 (noetic, ROS 2); absent before
    try:
        return np.eye(4) if pose is None else pose_matrix(pose)
    except ValueError as e:
        raise SceneError("object %s: %s" % (name, e)) from None


def _shapes(msg, name):
    if len(msg.primitives) != len(msg.primitive_poses) or \
            len(msg.meshes) != len(msg.mesh_poses):
        raise SceneError("object %s: %d primitives with %d poses, %d meshes with %d poses; give "
                         "one pose per shape" % (name, len(msg.primitives),
                                                 len(msg.primitive_poses), len(msg.meshes),
                                                 len(msg.mesh_poses)))
    if getattr(msg, "planes", None):
        raise SceneError("object %s: planes are not supported (an infinite plane blocks "
                         "half the workspace); give a thin box instead" % name)
    try:
        shapes = [_primitive(p, pose_matrix(pose), name)
                  for p, pose in zip(msg.primitives, msg.primitive_poses)]
        shapes += [Shape.mesh(np.array([[v.x, v.y, v.z] for v in mesh.vertices]),
                              np.array([list(t.vertex_indices) for t in mesh.triangles]),
                              pose_matrix(pose))
                   for mesh, pose in zip(msg.meshes, msg.mesh_poses)]
    except ValueError as e:
        raise SceneError("object %s: %s" % (name, e)) from None
    if not shapes:
        raise SceneError("object %s has no primitives or meshes; give at least one shape" % name)
    return shapes


def _primitive(primitive, pose, name):
    kind, d = int(primitive.type), list(primitive.dimensions)
    needed = {BOX: 3, SPHERE: 1, CYLINDER: 2, CONE: 2}.get(kind)
    if needed is None:
        raise SceneError("object %s: primitive type %d is not BOX, SPHERE, CYLINDER or CONE"
                         % (name, kind))
    if len(d) < needed:
        raise SceneError("object %s: a primitive of type %d needs %d dimensions, has %d"
                         % (name, kind, needed, len(d)))
    if kind == BOX:
        return Shape.box(d[:3], pose)
    if kind == SPHERE:
        return Shape.sphere(d[0], pose)
    # A cone (height, radius) lies inside the cylinder of its height and base radius:
    # checking that cylinder is conservative.
    return Shape.cylinder(d[0], d[1], pose)


def _relative(shapes, pose, scene, object_id):
    if object_id not in scene.objects:
        raise SceneError("object %s: APPEND to an object the scene does not hold; ADD it "
                         "first" % object_id)
    inverse = np.linalg.inv(scene.objects[object_id].pose)
    return [shape.moved(inverse @ pose) for shape in shapes]


__all__ = ["ADD", "APPEND", "MOVE", "REMOVE", "Scene", "apply", "change_of",
           "changes_of_scene", "operation_of", "pose_matrix"]
