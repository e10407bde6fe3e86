"""actionlib's SimpleActionServer without its lost wake-up.

Its execute loop checks for a new goal and then waits 0.1 s on a condition
without holding the lock in between: a goal that arrives in that gap (a client
that sends the next goal as soon as it has a result, while the callback still
records its health) waits out the 0.1 s. Upstream fixed it after the release
that Debian ships (ros/actionlib pull request 212: skip the wait when a goal is
already there); this is that fix."""
import traceback

import actionlib
import rospy

LOOP = 0.1   # s: as upstream, only a bound for noticing shutdown now


class SimpleActionServer(actionlib.SimpleActionServer):
    def executeLoop(self):  # noqa: N802 (actionlib's name)
        while not rospy.is_shutdown():
            with self.terminate_mutex:
                if self.need_to_terminate:
                    break
            if self.is_active():
                rospy.logerr("Should never reach this code with an active goal")
                return
            if self.is_new_goal_available():
                self.run(self.accept_new_goal())
            with self.execute_condition:   # the check and the wait under one lock
                if not self.is_new_goal_available():
                    self.execute_condition.wait(LOOP)

    def run(self, goal):
        try:
            self.execute_callback(goal)
            if self.is_active():
                rospy.logwarn("the execute callback set no terminal status: aborted")
                self.set_aborted(None, "No terminal state was set.")
        except Exception as e:
            rospy.logerr("Exception in the execute callback: %s\n%s", e, traceback.format_exc())
            self.set_aborted(None, "Exception in execute callback: %s" % e)
