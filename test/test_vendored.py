"""third_party/ holds upstream's message packages unchanged, byte for byte: each file
has the git blob id that upstream's tree has for it (third_party/UPSTREAM.txt), and the
only files of our own are the README, that list and the trimmed CMakeLists.txt, which
build exactly the interface files vendored beside them."""
import hashlib
import re
from pathlib import Path

import pytest

THIRD_PARTY = Path(__file__).resolve().parents[1] / "third_party"
TRIMMED = {"moveit_msgs/CMakeLists.txt", "ros2/moveit_msgs/CMakeLists.txt",
           "ros2/control_msgs/CMakeLists.txt"}
OURS = {"README.md", "UPSTREAM.txt"} | TRIMMED


def upstream_blobs():
    lines = (THIRD_PARTY / "UPSTREAM.txt").read_text().splitlines()
    return dict(reversed(line.split("  ", 1)) for line in lines if line and line[0] != "#")


def git_blob_id(path):
    """The id git gives a file's content (`git hash-object`): upstream's trees list it."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_every_vendored_file_is_upstreams_byte_for_byte():
    blobs = upstream_blobs()
    files = {str(p.relative_to(THIRD_PARTY)) for p in THIRD_PARTY.rglob("*") if p.is_file()}
    assert files - OURS == set(blobs)
    changed = [name for name, blob in blobs.items() if git_blob_id(THIRD_PARTY / name) != blob]
    assert changed == []


def test_the_blob_check_sees_a_one_byte_change(tmp_path):
    name = "moveit_msgs/msg/CollisionObject.msg"
    copy = tmp_path / "CollisionObject.msg"
    copy.write_bytes((THIRD_PARTY / name).read_bytes() + b" ")
    assert git_blob_id(THIRD_PARTY / name) == upstream_blobs()[name]
    assert git_blob_id(copy) != upstream_blobs()[name]


@pytest.mark.parametrize("cmake", sorted(TRIMMED))
def test_a_trimmed_cmakelists_builds_exactly_the_vendored_interfaces(cmake):
    package = (THIRD_PARTY / cmake).parent
    text = (package / "CMakeLists.txt").read_text()
    listed = set(re.findall(r"(\w+\.(?:msg|srv|action))\b", text))
    present = {p.name for p in package.glob("*/*") if p.suffix in (".msg", ".srv", ".action")}
    assert listed == present
