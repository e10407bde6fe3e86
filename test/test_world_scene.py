"""The scene: immutable, versioned, MoveIt's operations, read from YAML with errors
that name the object and the field."""
import numpy as np
import pytest

from latent_geodesics.world.scene import Scene, SceneError, Shape, WorldObject

FRAME = "panda_link0"


def at(x, y, z):
    pose = np.eye(4)
    pose[:3, 3] = [x, y, z]
    return pose


def box(object_id, x=0.5):
    return WorldObject(object_id, at(x, 0, 0.2), (Shape.box([0.1, 0.2, 0.3]),))


def test_operations_return_new_scenes_one_version_later():
    empty = Scene(FRAME)
    one = empty.add(box("a"))
    two = one.add(box("b"))
    assert (empty.version, one.version, two.version) == (0, 1, 2)
    assert empty.object_ids == [] and one.object_ids == ["a"] and two.object_ids == ["a", "b"]
    assert two.updated >= one.updated >= empty.updated
    replaced = two.add(box("a", x=0.9))   # ADD of a known id replaces it
    assert replaced.objects["a"].pose[0, 3] == 0.9 and two.objects["a"].pose[0, 3] == 0.5
    moved = replaced.move("b", at(0, 1, 0))
    assert moved.objects["b"].pose[1, 3] == 1 and replaced.objects["b"].pose[1, 3] == 0
    appended = moved.append("b", [Shape.sphere(0.1)])
    assert [s.kind for s in appended.objects["b"].shapes] == ["box", "sphere"]
    assert appended.remove("a").object_ids == ["b"] and appended.remove().object_ids == []
    assert appended.remove().version == appended.version + 1
    assert appended.frame == FRAME
    with pytest.raises(TypeError):
        appended.objects["c"] = box("c")


@pytest.mark.parametrize("operation", ["remove", "move", "append"])
def test_unknown_objects_are_named(operation):
    scene = Scene(FRAME).add(box("a"))
    args = {"remove": (), "move": (np.eye(4),), "append": ([Shape.sphere(0.1)],)}[operation]
    with pytest.raises(SceneError, match="'ghost'") as error:
        getattr(scene, operation)("ghost", *args)
    assert isinstance(error.value, KeyError) and isinstance(error.value, ValueError)


def test_shapes_refuse_bad_dimensions_naming_the_field():
    with pytest.raises(ValueError, match="box dimensions.*box sizes"):
        Shape.box([0.1, -0.2, 0.3])
    with pytest.raises(ValueError, match="sphere dimensions.*radius"):
        Shape.sphere(float("nan"))
    with pytest.raises(ValueError, match="cylinder dimensions.*height"):
        Shape.cylinder(float("inf"), 0.1)
    with pytest.raises(ValueError, match="box dimensions"):
        Shape.box([0.1, 0.2])
    with pytest.raises(ValueError, match="cylinder pose"):
        Shape.cylinder(0.1, 0.1, pose=np.full((4, 4), 2.0))
    with pytest.raises(ValueError, match="mesh triangles"):
        Shape.mesh(np.zeros((3, 3)), [[0, 1, 5]])
    assert Shape.cylinder(0.3, 0.05).dimensions == (0.3, 0.05)


SCENE = {"frame": FRAME, "objects": [
    {"id": "table", "pose": {"position": [0.5, 0, -0.01], "orientation": [0, 0, 0, 1]},
     "shapes": [{"box": [1.0, 0.8, 0.02]}]},
    {"id": "bottle", "position": [0.4, 0.2, 0.1],
     "shapes": [{"cylinder": [0.2, 0.03]},
                {"sphere": 0.04, "position": [0, 0, 0.12]},
                {"spheres": [[0, 0, 0.2, 0.02]]}]},
]}


def test_a_scene_file_reads_as_documented(tmp_path):
    import yaml
    path = tmp_path / "scene.yaml"
    path.write_text(yaml.safe_dump(SCENE))
    scene = Scene.from_yaml(str(path), FRAME)
    assert scene.object_ids == ["bottle", "table"]
    bottle = scene.objects["bottle"]
    assert [s.kind for s in bottle.shapes] == ["cylinder", "sphere", "spheres"]
    np.testing.assert_allclose(bottle.pose[:3, 3], [0.4, 0.2, 0.1])
    np.testing.assert_allclose(bottle.shapes[1].pose[:3, 3], [0, 0, 0.12])
    described = {d["id"]: d for d in scene.describe()}
    assert described["table"]["shapes"] == [{"kind": "box", "dimensions": [1.0, 0.8, 0.02]}]
    np.testing.assert_allclose(described["table"]["orientation"], [0, 0, 0, 1])


@pytest.mark.parametrize("change, message", [
    (lambda d: d["objects"][0].pop("id"), "object 1 needs an 'id'"),
    (lambda d: d["objects"][1]["shapes"].append({"cone": [1, 2]}),
     "'bottle' shape 4 must name exactly one of"),
    (lambda d: d["objects"][0]["shapes"][0].update(box=[1, -2, 3]), "'table'.*box dimensions"),
    (lambda d: d["objects"][0]["shapes"][0].update(box=[1, "x", 3]), "'table'.*finite numbers"),
    (lambda d: d["objects"][1].update(position=[0, 0]), "'bottle'.*position"),
    (lambda d: d["objects"][0]["pose"].update(orientation=[0, 0, 0, 0]),
     "'table'.*orientation"),
    (lambda d: d["objects"].append(dict(d["objects"][0])), "'table' appears twice"),
    (lambda d: d.update(frame="world"), "'frame' must be the robot's root frame"),
    (lambda d: d["objects"][0].update(shapes=[]), "'table' needs 'shapes'"),
])
def test_scene_file_errors_name_the_object_and_field(change, message):
    import copy
    data = copy.deepcopy(SCENE)
    change(data)
    with pytest.raises(SceneError, match=message):
        Scene.from_yaml(data, FRAME)


def test_unreadable_scene_files_are_refused_without_echoing_them(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("objects: [SECRET-CONTENT: {")
    with pytest.raises(SceneError, match="not valid YAML") as error:
        Scene.from_yaml(str(path), FRAME)
    assert "SECRET" not in str(error.value)
    with pytest.raises(SceneError, match="cannot be read"):
        Scene.from_yaml(str(tmp_path / "missing.yaml"), FRAME)
