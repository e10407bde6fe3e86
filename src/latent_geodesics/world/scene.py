"""The objects around the robot, as MoveIt's planning scene holds them: each object an
id, a pose in the robot's root frame and shapes (box, sphere, cylinder like
shape_msgs/SolidPrimitive; meshes as a conservative sphere cover). A Scene is
immutable: every change returns a new one, one version later, so a check that holds
a scene never sees it change underneath.

A scene file (Scene.from_yaml) reads::

    frame: panda_link0            # optional; must be the robot's root frame if given
    objects:
      - id: table
        pose: {position: [0.5, 0, -0.01], orientation: [0, 0, 0, 1]}   # x y z w
        shapes:
          - box: [1.0, 0.8, 0.02]          # full sizes x, y, z
      - id: bottle
        position: [0.4, 0.2, 0.1]          # the pose's fields may stand alone
        shapes:
          - cylinder: [0.2, 0.03]          # height, radius (SolidPrimitive CYLINDER)
          - sphere: 0.04                   # radius
            position: [0, 0, 0.12]         # a shape's pose within its object
          - spheres: [[0, 0, 0.2, 0.02]]   # x, y, z, r: a sphere cover

A missing pose is the identity. Errors name the object and the field.
"""
import math
import time
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from latent_geodesics.errors import Error
from latent_geodesics.world.body import shown

KINDS = ("box", "sphere", "cylinder", "spheres")


class SceneError(Error, KeyError):
    """An object the scene does not hold, or a scene description it cannot read."""

    def __str__(self):   # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def as_pose(pose, what):
    """A finite 4x4 rigid transform (read-only copy); None is the identity."""
    if pose is None:
        pose = np.eye(4)
    pose = np.array(pose, dtype=float)
    if pose.shape != (4, 4) or not np.all(np.isfinite(pose)) \
            or not np.allclose(pose[3], [0, 0, 0, 1]) \
            or not np.allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-6):
        raise ValueError("%s must be a finite 4x4 rigid transform" % what)
    pose.setflags(write=False)
    return pose


def pose_matrix(position=None, orientation=None, what="pose"):
    """4x4 from a position [x, y, z] and a quaternion [x, y, z, w] (ROS order)."""
    from scipy.spatial.transform import Rotation
    position = np.zeros(3) if position is None else np.asarray(position, dtype=float)
    quaternion = np.array([0, 0, 0, 1.0]) if orientation is None \
        else np.asarray(orientation, dtype=float)
    if position.shape != (3,) or not np.all(np.isfinite(position)):
        raise ValueError("%s: position must be three finite numbers [x, y, z]" % what)
    if quaternion.shape != (4,) or not np.all(np.isfinite(quaternion)) \
            or np.linalg.norm(quaternion) < 1e-9:
        raise ValueError("%s: orientation must be a quaternion [x, y, z, w], not zero" % what)
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_quat(quaternion / np.linalg.norm(quaternion)).as_matrix()
    pose[:3, 3] = position
    return pose


def _dimensions(kind, dimensions):
    if kind not in KINDS:
        raise ValueError("shape kind must be one of %s" % ", ".join(KINDS))
    values = np.array(dimensions, dtype=float)
    expected = {"box": (3,), "sphere": (1,), "cylinder": (2,)}.get(kind)
    if kind == "spheres":
        values = values.reshape(-1, 4) if values.size % 4 == 0 and values.size else None
        names = "spheres' radii"
    else:
        values = values.reshape(-1) if values.size == expected[0] else None
        names = {"box": "box sizes (x, y, z)", "sphere": "sphere radius",
                 "cylinder": "cylinder height and radius"}[kind]
    if values is None:
        raise ValueError("%s dimensions: give %s" % (kind, {
            "box": "[x, y, z] full sizes", "sphere": "a radius",
            "cylinder": "[height, radius]", "spheres": "rows [x, y, z, r]"}[kind]))
    checked = values[:, 3] if kind == "spheres" else values
    if not np.all(np.isfinite(values)) or np.any(checked < 0):
        raise ValueError("%s dimensions: the %s must be finite and not negative"
                         % (kind, names))
    if kind != "spheres":
        return tuple(float(v) for v in values)
    values.setflags(write=False)
    return values


@dataclass(frozen=True, eq=False)
class Shape:
    """One primitive of an object. dimensions: box (x, y, z) full sizes; sphere (r,);
    cylinder (height, radius) along z; spheres an (M, 4) array of centres and radii.
    pose: 4x4 in the object's frame."""
    kind: str
    dimensions: tuple
    pose: np.ndarray = field(default_factory=lambda: as_pose(None, "shape pose"))

    def __post_init__(self):
        object.__setattr__(self, "dimensions", _dimensions(self.kind, self.dimensions))
        object.__setattr__(self, "pose", as_pose(self.pose, "%s pose" % self.kind))

    @classmethod
    def box(cls, size, pose=None):
        return cls("box", size, pose)

    @classmethod
    def sphere(cls, radius, pose=None):
        return cls("sphere", [radius], pose)

    @classmethod
    def cylinder(cls, height, radius, pose=None):
        return cls("cylinder", [height, radius], pose)

    @classmethod
    def mesh(cls, vertices, triangles, pose=None, resolution=0.01):
        """A triangle mesh held as a conservative sphere cover (world/cover.py)."""
        from latent_geodesics.world.cover import mesh_cover
        vertices = np.asarray(vertices, dtype=float)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or not np.all(np.isfinite(vertices)):
            raise ValueError("mesh vertices must be finite rows [x, y, z]")
        triangles = np.asarray(triangles)
        if triangles.ndim != 2 or triangles.shape[1] != 3 or triangles.size == 0 \
                or triangles.min() < 0 or triangles.max() >= len(vertices):
            raise ValueError("mesh triangles must be rows of three vertex indices")
        return cls("spheres", mesh_cover(vertices, triangles, resolution), pose)

    def describe(self):
        return {"kind": self.kind, "dimensions": np.asarray(self.dimensions).tolist()}


@dataclass(frozen=True, eq=False)
class WorldObject:
    """An object: its id, its frame's pose in the robot's root frame, its shapes."""
    id: str
    pose: np.ndarray
    shapes: tuple

    def __post_init__(self):
        if not isinstance(self.id, str) or not self.id:
            raise ValueError("object id must be a non-empty string")
        object.__setattr__(self, "pose", as_pose(self.pose, "pose of object %s"
                                                 % shown(self.id)))
        shapes = tuple(self.shapes)
        if not all(isinstance(s, Shape) for s in shapes):
            raise ValueError("shapes of object %s must be Shape instances" % shown(self.id))
        object.__setattr__(self, "shapes", shapes)


class Scene:
    """Objects by id in the robot's root frame; immutable (operations return a new
    scene, version + 1, updated now)."""

    def __init__(self, frame, objects=(), version=0, updated=None):
        self._frame = str(frame)
        self._objects = MappingProxyType({o.id: o for o in objects})
        self._version = int(version)
        self._updated = time.time() if updated is None else float(updated)

    frame = property(lambda self: self._frame, doc="the robot's root frame")
    objects = property(lambda self: self._objects, doc="id -> WorldObject (read-only)")
    version = property(lambda self: self._version)
    updated = property(lambda self: self._updated, doc="time.time() of the last change")

    @property
    def object_ids(self):
        return sorted(self._objects)

    def _next(self, objects):
        return Scene(self._frame, objects, self._version + 1)

    def _known(self, object_id):
        if object_id not in self._objects:
            raise SceneError("the scene has no object %s; the objects are added first "
                             "(ADD)" % shown(object_id))
        return self._objects[object_id]

    def add(self, obj):
        """obj added; an object of the same id is replaced (as MoveIt's ADD does)."""
        if not isinstance(obj, WorldObject):
            raise ValueError("Scene.add takes a WorldObject")
        return self._next([o for o in self._objects.values() if o.id != obj.id] + [obj])

    def remove(self, object_id=None):
        """The object removed (all objects where object_id is None)."""
        if object_id is None:
            return self._next([])
        self._known(object_id)
        return self._next([o for o in self._objects.values() if o.id != object_id])

    def move(self, object_id, pose):
        """The object's frame moved to a new pose (its shapes keep theirs within it)."""
        old = self._known(object_id)
        return self._replace(WorldObject(old.id, pose, old.shapes))

    def append(self, object_id, shapes):
        """Shapes added to an existing object."""
        old = self._known(object_id)
        return self._replace(WorldObject(old.id, old.pose, old.shapes + tuple(shapes)))

    def _replace(self, obj):
        return self._next([obj if o.id == obj.id else o for o in self._objects.values()])

    def describe(self):
        """One dict per object (id, position, orientation [x, y, z, w], shapes)."""
        from scipy.spatial.transform import Rotation
        return [{"id": o.id, "position": o.pose[:3, 3].tolist(),
                 "orientation": Rotation.from_matrix(np.array(o.pose[:3, :3])).as_quat().tolist(),
                 "shapes": [s.describe() for s in o.shapes]}
                for o in (self._objects[i] for i in self.object_ids)]

    def to_yaml(self):
        """The scene in the scene file's format: from_yaml reads it back."""
        import yaml
        return yaml.safe_dump({"frame": self._frame, "objects": [
            _object_entry(self._objects[i]) for i in self.object_ids]}, sort_keys=False)

    @classmethod
    def from_yaml(cls, data, frame):
        """A scene from a file's path or its parsed content (format: module docstring)."""
        if not isinstance(data, dict):
            import yaml
            try:
                with open(data) as stream:
                    data = yaml.safe_load(stream)
            except OSError as e:
                raise SceneError("scene file cannot be read (%s); give the path of a "
                                 "YAML scene file" % type(e).__name__) from None
            except yaml.YAMLError:
                raise SceneError("scene file is not valid YAML; see Scene's format "
                                 "(objects: [{id, pose, shapes}])") from None
        return cls(frame, _read_objects(data, frame))


def _read_objects(data, frame):
    if not isinstance(data, dict):
        raise SceneError("scene: the top level must be a mapping with 'objects'")
    if data.get("frame", frame) != frame:
        raise SceneError("scene: 'frame' must be the robot's root frame %s" % shown(frame))
    objects = data.get("objects") or []
    if not isinstance(objects, list):
        raise SceneError("scene: 'objects' must be a list")
    read, seen = [], set()
    for number, item in enumerate(objects, 1):
        obj = _read_object(item, number)
        if obj.id in seen:
            raise SceneError("scene: object %s appears twice" % shown(obj.id))
        seen.add(obj.id)
        read.append(obj)
    return read


def _read_object(item, number):
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        raise SceneError("scene: object %d needs an 'id' (a string)" % number)
    name = "object %s" % shown(item["id"])
    shapes = item.get("shapes")
    if not isinstance(shapes, list) or not shapes:
        raise SceneError("scene: %s needs 'shapes', a non-empty list" % name)
    pose = _read_pose(item, name)
    try:
        read = tuple(_read_shape(shape, "%s shape %d" % (name, i))
                     for i, shape in enumerate(shapes, 1))
        return WorldObject(item["id"], pose, read)
    except SceneError:
        raise
    except (ValueError, TypeError) as e:
        raise SceneError("scene: %s: %s" % (name, e)) from None


def _read_pose(item, what):
    pose = item.get("pose", item)
    if not isinstance(pose, dict):
        raise SceneError("scene: %s: 'pose' must be a mapping {position, orientation}" % what)
    try:
        return pose_matrix(pose.get("position"), pose.get("orientation"), what)
    except (ValueError, TypeError) as e:
        raise SceneError("scene: %s" % e) from None


def _read_shape(shape, what):
    kinds = [k for k in KINDS if isinstance(shape, dict) and k in shape]
    if len(kinds) != 1:
        raise SceneError("scene: %s must name exactly one of %s" % (what, ", ".join(KINDS)))
    kind, value = kinds[0], shape[kinds[0]]
    if kind == "sphere" and not isinstance(value, list):
        value = [value]
    if kind != "spheres" and not (isinstance(value, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in value)):
        raise SceneError("scene: %s: %s dimensions must be finite numbers" % (what, kind))
    pose = _read_pose(shape, what)
    try:
        return Shape(kind, value, pose)
    except ValueError as e:
        raise SceneError("scene: %s: %s" % (what, e)) from None


def _pose_entry(pose):
    from scipy.spatial.transform import Rotation
    return {"position": pose[:3, 3].tolist(),
            "orientation": Rotation.from_matrix(np.array(pose[:3, :3])).as_quat().tolist()}


def _object_entry(obj):
    shapes = []
    for shape in obj.shapes:
        size = np.asarray(shape.dimensions, dtype=float)
        value = float(size[0]) if shape.kind == "sphere" else size.tolist()
        shapes.append(dict({shape.kind: value}, **_pose_entry(shape.pose)))
    return {"id": obj.id, "pose": _pose_entry(obj.pose), "shapes": shapes}
