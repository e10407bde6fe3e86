"""ROS 1 nodes: thin wrappers that convert messages and call the core."""
