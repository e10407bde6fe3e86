"""Write a built-in data set for train_iwae:

    python -m latent_geodesics.data arm|skills|curves|pendulum|arcs|laikago --out data.npz \
        [--no-hole] [--seed N]

An --out ending in .bag writes a rosbag of sensor_msgs/JointState on /joint_states,
as a robot's recording would be (needs the ROS environment).
"""
import argparse

import numpy as np

from latent_geodesics.data import (
    arm_dataset,
    laikago_dataset,
    pendulum_dataset,
    two_arcs,
    two_skills,
)
from latent_geodesics.files import atomic_write
from latent_geodesics.sim.arcs import JOINT_NAMES as ARC_JOINTS
from latent_geodesics.sim.skills import curved_skills


def write_bag(path, data, names, topic="/joint_states", rate=50.0):
    """The poses as a recording: JointState messages at `rate` Hz."""
    import rosbag
    import rospy
    from sensor_msgs.msg import JointState

    def write(f):
        with rosbag.Bag(f, "w") as bag:
            for i, q in enumerate(data):
                stamp = rospy.Time.from_sec(1.0 + i / rate)
                msg = JointState(name=list(names), position=list(map(float, q)))
                msg.header.stamp, msg.header.seq = stamp, i
                bag.write(topic, msg, stamp)
    atomic_write(path, write)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m latent_geodesics.data", description=__doc__)
    p.add_argument("name", choices=["arm", "skills", "curves", "pendulum", "arcs", "laikago"])
    p.add_argument("--out", required=True,
                   help="NPZ file (data, joint_names), or a .bag of JointState messages")
    p.add_argument("--no-hole", action="store_true", help="arm/pendulum/arcs: keep every region")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.name == "arm":
        arm = arm_dataset(hole=not args.no_hole, seed=args.seed)
        data, names = arm.data, arm.joint_names
    elif args.name == "skills":   # two reaching skills, the sector between never shown
        arm = two_skills(seed=args.seed)
        data, names = arm.data, arm.joint_names
    elif args.name == "curves":   # six curved skills: the chord and the motions differ
        skills = curved_skills(seed=args.seed)
        data, names = skills.data, skills.joint_names
    elif args.name == "pendulum":
        data, names = pendulum_dataset(hole=None if args.no_hole else (0.8, 1.6), seed=args.seed)
    elif args.name == "arcs":
        data, names = two_arcs(gap=0.0 if args.no_hole else 0.35, seed=args.seed), ARC_JOINTS
    else:
        data, names = laikago_dataset()
    if args.out.endswith(".bag"):
        write_bag(args.out, data, names)
    else:
        atomic_write(args.out, lambda f: np.savez(f, data=data, joint_names=np.array(names)))
    print("%s: %d rows x %d joints -> %s" % (args.name, len(data), len(names), args.out))


if __name__ == "__main__":
    main()
