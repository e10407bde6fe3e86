"""The layout stays easy to change: no class over 200 lines, no function over 60 in
the package and the demo, and the core never imports rospy (the ROS front ends do)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "latent_geodesics"
DEMO = ROOT / "demo"   # the main job: a client of the package, outside it
MAX_CLASS, MAX_FUNCTION = 200, 60


def definitions():
    for path in sorted(SRC.rglob("*.py")) + sorted(DEMO.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(ROOT), node


def test_no_long_classes_or_functions():
    long = ["%s:%d %s (%d lines)" % (path, node.lineno, node.name,
                                     node.end_lineno - node.lineno + 1)
            for path, node in definitions()
            if node.end_lineno - node.lineno + 1 > (
                MAX_CLASS if isinstance(node, ast.ClassDef) else MAX_FUNCTION)]
    assert not long, long


def test_the_core_imports_no_ros():
    ros_modules = {"rospy", "rosbag", "actionlib", "rclpy", "tf2_ros"}
    offenders = []
    for path in SRC.rglob("*.py"):
        if {"ros", "ros2"} & set(path.relative_to(SRC).parts[:-1]):
            continue   # the ROS 1 and ROS 2 front ends
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            if any(n.split(".")[0] in ros_modules for n in names) and node.col_offset == 0:
                offenders.append("%s: %s" % (path.relative_to(SRC), names))
    assert not offenders, offenders


# What a front end may touch on the engine: its settings (ROS 2 parameter changes)
# and what is served (the MF image, the joint names). Requests go through the
# GeodesicService, so both front ends answer them alike.
ENGINE_ATTRIBUTES_FOR_FRONT_ENDS = {"settings", "served"}


def test_front_ends_hold_no_request_logic():
    offenders = []
    for path in sorted(SRC.glob("ros*/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "engine" \
                    and node.attr not in ENGINE_ATTRIBUTES_FOR_FRONT_ENDS:
                offenders.append("%s:%d engine.%s" % (path.relative_to(SRC), node.lineno,
                                                      node.attr))
    assert not offenders, offenders


# The layers, lowest first: a module imports only from its own package or from
# packages of lower layers; packages of one layer are independent of each other,
# except the front ends on top (msg, srv and action are the generated interfaces).
# The demo is not a layer: it lives in demo/ beside the package and only uses it.
LAYERS = [{"errors", "files"}, {"settings"}, {"geometry", "sim", "world"}, {"graph", "data"},
          {"model"},
          {"serving", "learning"},
          {"ros", "ros2", "nn_geodesic", "training", "msg", "srv", "action"}]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def package_imports():
    """(importing package, imported package, where) for every import inside src."""
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        own = parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                yield own, "relative import", "%s:%d" % (path.relative_to(SRC), node.lineno)
            elif isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("latent_geodesics."):
                yield own, node.module.split(".")[1], "%s:%d" % (path.relative_to(SRC),
                                                                 node.lineno)


def test_src_shows_the_layers_as_subpackages():
    top = {p.stem for p in SRC.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert top - {"__init__"} <= set(RANK), sorted(top - set(RANK) - {"__init__"})


def test_imports_only_go_down_the_layers():
    wrong = ["%s imports %s (%s)" % (own, other, where)
             for own, other, where in package_imports()
             if own != other and (other not in RANK or RANK[other] > RANK.get(own, -1)
                                  or RANK[other] == RANK[own] < len(LAYERS) - 1)]
    assert not wrong, wrong


def imported_top_levels(path):
    """The top-level module of every absolute import in one file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


def test_the_demo_is_outside_the_package_and_nothing_in_it_imports_the_demo():
    assert not (SRC / "demo").exists() and (DEMO / "__init__.py").exists()
    offenders = [str(path.relative_to(ROOT)) for path in sorted(SRC.rglob("*.py"))
                 if "demo" in set(imported_top_levels(path))]
    assert not offenders, offenders


def test_scripts_demo_finds_the_demo_from_any_directory(tmp_path):
    """`make demo` runs scripts/demo from the repository root, rosrun from elsewhere."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo"), "--help"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--quick" in done.stdout
