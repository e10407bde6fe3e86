"""robot_description is parsed without DTDs or entities, and errors never echo it."""
from pathlib import Path

import pytest

from latent_geodesics.errors import LimitError
from latent_geodesics.serving.trajectory import JointLimits
from latent_geodesics.world.urdf import URDFError, parse_urdf, urdf_joint_names

PANDA = (Path(__file__).resolve().parents[1] / "urdf" / "panda.urdf").read_text()
NAMES = ["panda_joint%d" % i for i in range(1, 8)]
SECRET = Path(__file__).resolve()   # a file the test can read, standing for /etc/passwd
LOCAL_DTD = "/usr/share/xml/schema/xml-core/tr9401.dtd"   # Debian's xml-core

# The attacks a hostile publisher of robot_description can try: an external entity
# read into a joint name (echoed by "has no joints ... (it has ...)"), the same through
# a local DTD's parameter entities, and an entity expansion bomb.
ATTACKS = {
    "external entity": """<?xml version="1.0"?>
<!DOCTYPE robot [<!ENTITY secret SYSTEM "file://%s">]>
<robot name="x"><link name="a"/><joint name="&secret;" type="fixed">
<parent link="a"/><child link="a"/></joint></robot>""" % SECRET,
    "local DTD": """<?xml version="1.0"?>
<!DOCTYPE robot [
  <!ENTITY %% local_dtd SYSTEM "file://%s">
  <!ENTITY %% SGMLstyle '<!ENTITY &#x25; file SYSTEM "file://%s">
    <!ENTITY &#x25; eval "<!ENTITY secret SYSTEM &#x27;file:///nonexistent/&#x25;file;&#x27;>">
    &#x25;eval;'>
  %%local_dtd;
]>
<robot name="x"><joint name="&secret;" type="fixed"/></robot>""" % (LOCAL_DTD, SECRET),
    "entity bomb": """<?xml version="1.0"?>
<!DOCTYPE robot [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<robot name="&b;"/>""",
    "doctype after a comment": """<?xml version="1.0"?><!-- hi -->
<!doctype robot [<!ENTITY secret SYSTEM "file://%s">]><robot name="&secret;"/>""" % SECRET,
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_hostile_urdf_is_refused_without_echoing_anything(attack):
    secret = SECRET.read_text()
    with pytest.raises(LimitError) as raised:
        JointLimits.uniform(NAMES, 1.0).with_urdf(ATTACKS[attack])
    message = str(raised.value)
    assert "DOCTYPE" in message
    assert secret[:40] not in message and "test_urdf" not in message


def test_errors_name_the_place_not_the_content():
    with pytest.raises(URDFError) as raised:
        parse_urdf('<robot name="x"><joint name="secret-text" type=fixed/></robot>')
    assert "line 1" in str(raised.value) and "secret-text" not in str(raised.value)
    with pytest.raises(LimitError) as raised:
        JointLimits.uniform(NAMES, 1.0).with_urdf(PANDA.replace("panda_joint", "secret_joint"))
    assert "secret_joint" not in str(raised.value) and "panda_joint1" in str(raised.value)


@pytest.mark.parametrize("urdf", ["", "   ", None, "<html/>"])
def test_empty_or_foreign_documents_are_refused(urdf):
    with pytest.raises(URDFError):
        parse_urdf(urdf)


def test_a_real_urdf_still_reads():
    robot = parse_urdf(PANDA)
    assert set(NAMES) <= {j.name for j in robot.joints}
    assert set(NAMES) <= set(urdf_joint_names(PANDA))
    limits = JointLimits.uniform(NAMES, 1.0).with_urdf(PANDA)
    assert limits.source == "urdf" and limits.velocity[0] == pytest.approx(2.175)
