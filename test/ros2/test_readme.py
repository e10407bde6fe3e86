"""The README's ROS 2 section run as written: its first bash block (set-up, data,
training, the server in the background) and its Python client saved as client.py
and run, in one bash as a user would type them. The client must get a graph
geodesic, a refined one with feedback, and a cancelled refinement."""
import re
import subprocess

from .conftest import ROOT, node_env

SECTION = "## ROS 2\n"


def readme_blocks():
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ", 1)]
    return (re.findall(r"```bash\n(.*?)```", section, re.S),
            re.findall(r"```python\n(.*?)```", section, re.S))


def test_the_readme_ros2_section_runs_as_written():
    (setup, *_), (client, *_) = readme_blocks()
    script = (setup + "cat > client.py <<'CLIENT'\n" + client + "CLIENT\n"
              + "python client.py\nstatus=$?\nkill %1\nwait\nexit $status\n")
    env = node_env()
    env.pop("PYTHONPATH")   # as written: the package comes from the venv
    run = subprocess.run(["bash", "-e", "-c", script], cwd=str(ROOT), env=env, timeout=600,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = run.stdout
    assert run.returncode == 0, out[-3000:]
    assert re.search(r"graph geodesic: graph geodesic, \d+ points", out), out[-3000:]
    assert re.search(r"iteration \d+, length \d", out)
    assert "refined: NN geodesic after" in out and "- status True" in out
    assert "cancelled: cancelled; best curve so far - status True" in out, out[-3000:]
