"""Where a frame is in the robot's root frame, from the transforms /tf and /tf_static
carry: what tf2's buffer answers for the newest time (ROS 1's scene asks tf2_ros for
exactly that, rospy.Time(0)). Used on ROS 2, where no tf2_ros wheel exists for the
pip-installed ROS 2 (tf2_msgs is vendored: third_party/ros2/tf2_msgs): each child
frame keeps its latest transform from its parent, and a lookup chains them through
the two frames' common ancestor. No interpolation in time and no history: an object
is placed where its frame is when the object arrives."""
import numpy as np


def frame_name(frame):
    """tf2's name of a frame: without a leading slash (tf2 strips it too)."""
    return str(frame).lstrip("/")


class FrameTree:
    """The latest transform of each child frame from its parent (4x4: the child's pose
    in the parent's frame), as tf messages give them."""

    def __init__(self):
        self._parent = {}   # child -> (parent, 4x4)

    def set(self, parent, child, pose):
        """One transform; a frame whose parent changes is re-parented (tf2 does too)."""
        parent, child = frame_name(parent), frame_name(child)
        if parent and child and parent != child:
            self._parent[child] = (parent, np.asarray(pose, dtype=np.float64))

    def _chain(self, frame):
        """[(ancestor, the frame's pose in it)] from the frame itself up to its root."""
        chain, pose, seen = [(frame, np.eye(4))], np.eye(4), {frame}
        while frame in self._parent:
            frame, step = self._parent[frame]
            if frame in seen:   # a loop in what was published: no answer through it
                break
            seen.add(frame)
            pose = step @ pose
            chain.append((frame, pose))
        return chain

    def lookup(self, target, source):
        """The pose of frame `source` in frame `target` (4x4), or None where no chain of
        transforms joins them."""
        target, source = frame_name(target), frame_name(source)
        if target == source:
            return np.eye(4)
        up_from_target = dict(self._chain(target))
        for ancestor, source_in_ancestor in self._chain(source):
            if ancestor in up_from_target:
                return np.linalg.inv(up_from_target[ancestor]) @ source_in_ancestor
        return None
