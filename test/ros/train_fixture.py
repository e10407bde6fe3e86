#!/usr/bin/env python3
"""Train the small arm model the rostests serve (seconds on a CPU): OUT_DIR."""
import os
import sys

from latent_geodesics.data import arm_dataset
from latent_geodesics.model import save_model
from latent_geodesics.training import train_iwae

out = sys.argv[1]
if not os.path.isfile(os.path.join(out, "model.yaml")):
    arm = arm_dataset(n_demos=80, seed=1)
    model, report = train_iwae(arm.data, arm.joint_names, epochs=40, seed=1,
                               device="cpu", progress=False)
    save_model(model, out, model.meta)
    print("fixture model: held-out RMSE %.3f rad" % report["held_out"]["rmse"])
