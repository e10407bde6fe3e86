#!/usr/bin/env python3
"""Train the small arm models the rostests serve (seconds on a CPU): OUT_DIR..."""
import os
import sys

import numpy as np

from latent_geodesics.data import arm_dataset
from latent_geodesics.model import save_model
from latent_geodesics.training import train_iwae

arm = arm_dataset(n_demos=80, seed=1)
np.savez(os.path.join(os.path.dirname(sys.argv[1]), "fixture_data.npz"), data=arm.data,
         joint_names=np.array(arm.joint_names))   # for the active learner's round 0
for out, seed in zip(sys.argv[1:], range(1, 100)):  # one model per directory given
    if not os.path.isfile(os.path.join(out, "model.yaml")):
        model, report = train_iwae(arm.data, arm.joint_names, epochs=40, seed=seed,
                                   device="cpu", progress=False)
        save_model(model, out, model.meta)
        print("fixture model %s: held-out RMSE %.3f rad" % (out, report["held_out"]["rmse"]))
