"""The demo's robot-world step: a box put where a served motion's hand passes,
sent as MoveIt sends it (moveit_msgs/CollisionObject on /collision_object); the same
request served again goes around it. Both motions are checked by the independent
dense check of the URDF's geometry (not the sphere cover the server plans with), and
the clearance over time is drawn."""
import os
import time

import numpy as np

from demo.client import SERVER
from latent_geodesics.world.body import RobotBody
from latent_geodesics.world.collision import CollisionChecker
from latent_geodesics.world.scene import Scene
from latent_geodesics.world.verification import dense_collisions

BOX = 0.05   # m, the object's edge
# Where along the served motion the object goes: on the hand's way up, where the
# neighbouring recorded carries pass clear of it (at the top of the lift every carry
# passes the same place, and no demonstrated way around is left).
AT = 0.3
PAIR = -1    # the showcase pair it blocks: the last (places at the table's far end)
HAND = "panda_link7"
DENSE_SPACING = 0.004   # m between the independent check's samples (the bench uses 1 mm)


def positions(trajectory):
    return np.array([p.positions for p in trajectory.points])


def times(trajectory):
    return np.array([p.time_from_start.to_sec() for p in trajectory.points])


def box_message(centre, frame, operation=0):
    from geometry_msgs.msg import Pose
    from moveit_msgs.msg import CollisionObject
    from shape_msgs.msg import SolidPrimitive
    box = CollisionObject(id="box", operation=operation)
    box.header.frame_id = frame
    box.pose.orientation.w = 1.0
    if operation == CollisionObject.ADD:
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = map(float, centre)
        pose.orientation.w = 1.0
        box.primitives = [SolidPrimitive(type=SolidPrimitive.BOX, dimensions=[BOX] * 3)]
        box.primitive_poses = [pose]
    return box


def wait_for_scene(scene, count, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        report = scene()
        if len(report.object_ids) == count:
            return report
        time.sleep(0.1)
    raise RuntimeError("the server's ~scene did not reach %d object(s)" % count)


def run_world_step(pair_endpoints, urdf):
    """(results for the report and figure); the box stays in the scene (the caller
    removes it with remove_box once rviz has drawn it)."""
    import rospy
    from moveit_msgs.msg import CollisionObject

    from latent_geodesics.srv import GetScene, GraphGeodesic
    graph = rospy.ServiceProxy(SERVER + "/graph_geodesic", GraphGeodesic)
    scene = rospy.ServiceProxy(SERVER + "/scene", GetScene)
    start, goal = pair_endpoints
    before = graph(start=start, goal=goal)
    names = list(before.trajectory.joint_names)
    body = RobotBody.from_urdf(urdf, names)
    q_before = positions(before.trajectory)
    there = q_before[int(AT * (len(q_before) - 1))]
    hand = body.sphere_centres(there[None])[0].detach().numpy()[
        body.sphere_links == body.link_names.index(HAND)].mean(axis=0)
    publisher = rospy.Publisher("/collision_object", CollisionObject, queue_size=10,
                                latch=True)
    publisher.publish(box_message(hand, body.root_frame))
    report = wait_for_scene(scene, 1)
    after = graph(start=start, goal=goal, publish=True)
    world = Scene.from_yaml(__import__("yaml").safe_load(report.objects_yaml), body.root_frame)
    out = summary(urdf, names, body, world, before, after if after.success else None, hand)
    if not after.success:   # no way around it: refused, never served through it
        out["refused"] = after.message
    return publisher, out


def summary(urdf, names, body, world, before, after, hand):
    checker = CollisionChecker(body, world)
    out = {"box_centre": hand.tolist(), "box_size": BOX, "frame": body.root_frame, "at": AT}
    for name, answer in (("before", before), ("after", after)):
        if answer is None:
            continue
        q = positions(answer.trajectory)
        dense = dense_collisions(urdf, names, world, q, spacing=DENSE_SPACING)
        out[name] = {"collides": bool(dense.collides), "clearance": float(dense.clearance),
                     "link": dense.link, "times": times(answer.trajectory).tolist(),
                     "clearances": checker.clearance(q)[0].tolist(),
                     "data_distance": float(answer.stats.data_distance),
                     "min_clearance": float(answer.stats.min_clearance),
                     "method": answer.stats.method, "duration": float(answer.stats.duration)}
    return out


def remove_box(publisher, frame):
    import rospy
    from moveit_msgs.msg import CollisionObject

    from latent_geodesics.srv import GetScene
    publisher.publish(box_message(None, frame, CollisionObject.REMOVE))
    wait_for_scene(rospy.ServiceProxy(SERVER + "/scene", GetScene), 0)
    publisher.unregister()   # latched: a server started later would get the REMOVE too


def world_figure(world, out):
    """Clearance over time: the motion served before the box arrived, and after."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from demo.figures import save_png
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, colour, label in (("before", "tab:red", "served before the box (blind)"),
                                ("after", "tab:green", "served with the box in the scene")):
        if name not in world:
            continue
        run = world[name]
        ax.plot(run["times"], run["clearances"], color=colour, label=label)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.axhline(0.02, color="grey", ls="--", lw=0.8, label="collision_padding 0.02 m")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("body to box (m); < 0: inside")
    ax.set_title("an %d cm box where the hand passed: the same request, served around it"
                 % round(100 * world["box_size"]))
    ax.legend(loc="best", fontsize=8)
    path = os.path.join(out, "world.png")
    save_png(fig, path)
    plt.close(fig)
    return path
