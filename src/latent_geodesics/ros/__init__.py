"""ROS 1 nodes: thin wrappers that convert messages and call the core."""


def run_node(name, node_class):
    """init_node, construct the node, spin; a bad set-up is one fatal log line.

    Set-up problems (a broken model directory, a missing parameter, an
    unwritable path) raise ValueError, KeyError or OSError.
    """
    import rospy
    rospy.init_node(name)
    try:
        node_class()
    except (ValueError, KeyError, OSError) as e:
        rospy.logfatal("%s cannot start: %s", name, e)
        raise SystemExit(1) from None
    rospy.loginfo("%s ready", name)
    rospy.spin()
