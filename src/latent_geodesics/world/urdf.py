"""Reading a robot_description safely: the one way every part of the package parses a URDF.

A URDF arrives from anyone who can set a parameter or publish a latched topic, and
Debian's lxml resolves external entities: a DOCTYPE can pull a local DTD and define an
entity holding any file the node can read, which an error message would then hand back
to the caller. A URDF needs no DOCTYPE (robot_state_publisher, xacro and MoveIt never
write one), so any document declaring one is refused before it is parsed, the parser
itself runs with entities, DTD loading and the network off, and no error here repeats
the document's content.
"""
import re

# XML allows whitespace, comments and processing instructions before the DOCTYPE;
# a search anywhere is stricter and cannot be dodged by what precedes it.
_DECLARATIONS = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)


class URDFError(ValueError):
    """robot_description is not a URDF the package will read."""


def parse_urdf(urdf_xml):
    """urdf_parser_py's URDF of a robot_description string, parsed without a DTD."""
    from lxml import etree
    from urdf_parser_py.urdf import URDF  # ROS's parser; imported only where URDFs are read
    from urdf_parser_py.xml_reflection.core import Path
    root = _safe_root(urdf_xml)
    try:   # what URDF.from_xml_string does after its own (unguarded) parse
        return URDF.from_xml(root, Path(URDF.XML_REFL.tag, tree=etree.ElementTree(root)))
    except Exception as e:   # urdf_parser_py raises many types, with document text in them
        raise URDFError("robot_description is not a valid URDF (%s); give the robot's URDF "
                        "as robot_state_publisher publishes it" % type(e).__name__) from None


def urdf_joint_names(urdf_xml):
    """The names of a URDF's joints (a cheap read: no model of the robot is built)."""
    return [joint.get("name") for joint in _safe_root(urdf_xml).iter("joint")]


def _safe_root(urdf_xml):
    from lxml import etree
    data = urdf_xml.encode("utf-8") if isinstance(urdf_xml, str) else bytes(urdf_xml or b"")
    if not data.strip():
        raise URDFError("robot_description is empty; give the robot's URDF")
    if _DECLARATIONS.search(data):
        raise URDFError("robot_description declares a DOCTYPE or entities, which a URDF never "
                        "needs and which are refused for safety; remove the <!DOCTYPE ...> "
                        "(run xacro to expand macros instead)")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             dtd_validation=False, huge_tree=False, remove_comments=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:   # its message may quote the document: only the place
        line, column = e.position if e.position else (0, 0)
        raise URDFError("robot_description is not well-formed XML (line %d, column %d); give "
                        "the robot's URDF as robot_state_publisher publishes it"
                        % (line, column)) from None
    if root.tag != "robot":
        raise URDFError("robot_description's root element is not <robot>; give a URDF")
    return root
