"""The scene as rviz draws it: one marker per shape (box, sphere, cylinder; a mesh as
its cover of spheres), as plain data a front end turns into visualization_msgs."""
import numpy as np
from scipy.spatial.transform import Rotation

CUBE, SPHERE, CYLINDER, SPHERE_LIST = 1, 2, 3, 7   # visualization_msgs/Marker types
OBJECT_COLOUR = (0.85, 0.25, 0.2, 0.6)


def marker_specs(scene):
    """[{id, ns, type, position, orientation (x, y, z, w), scale, points, colour}]."""
    specs = []
    for object_id in scene.object_ids:
        obj = scene.objects[object_id]
        for index, shape in enumerate(obj.shapes):
            pose = obj.pose @ shape.pose
            spec = dict(ns=object_id, id=index, position=tuple(pose[:3, 3]),
                        orientation=tuple(Rotation.from_matrix(pose[:3, :3]).as_quat()),
                        colour=OBJECT_COLOUR, points=[])
            spec.update(_geometry(shape))
            specs.append(spec)
    return specs


def _geometry(shape):
    d = shape.dimensions
    if shape.kind == "box":
        return dict(type=CUBE, scale=tuple(float(v) for v in d))
    if shape.kind == "sphere":
        return dict(type=SPHERE, scale=(2 * d[0],) * 3)
    if shape.kind == "cylinder":
        height, radius = d
        return dict(type=CYLINDER, scale=(2 * radius, 2 * radius, height))
    spheres = np.asarray(d, dtype=np.float64).reshape(-1, 4)   # a mesh's cover
    size = 2 * float(spheres[:, 3].max()) if len(spheres) else 0.0
    return dict(type=SPHERE_LIST, scale=(size,) * 3,
                points=[tuple(c) for c in spheres[:, :3]])
