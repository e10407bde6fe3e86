"""Write a built-in data set for train_iwae:

    python -m latent_geodesics.data arm|skills|pendulum|arcs|laikago --out data.npz \
        [--no-hole] [--seed N]
"""
import argparse

import numpy as np

from . import arm_dataset, laikago_dataset, pendulum_dataset, two_arcs, two_skills
from .arcs import JOINT_NAMES as ARC_JOINTS


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m latent_geodesics.data", description=__doc__)
    p.add_argument("name", choices=["arm", "skills", "pendulum", "arcs", "laikago"])
    p.add_argument("--out", required=True, help="NPZ file (data, joint_names)")
    p.add_argument("--no-hole", action="store_true", help="arm/pendulum/arcs: keep every region")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.name == "arm":
        arm = arm_dataset(hole=not args.no_hole, seed=args.seed)
        data, names = arm.data, arm.joint_names
    elif args.name == "skills":   # two reaching skills, the sector between never shown
        arm = two_skills(seed=args.seed)
        data, names = arm.data, arm.joint_names
    elif args.name == "pendulum":
        data, names = pendulum_dataset(hole=None if args.no_hole else (0.8, 1.6), seed=args.seed)
    elif args.name == "arcs":
        data, names = two_arcs(gap=0.0 if args.no_hole else 0.35, seed=args.seed), ARC_JOINTS
    else:
        data, names = laikago_dataset()
    np.savez(args.out, data=data, joint_names=np.array(names))
    print("%s: %d rows x %d joints -> %s" % (args.name, len(data), len(names), args.out))


if __name__ == "__main__":
    main()
