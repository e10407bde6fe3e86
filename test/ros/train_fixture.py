#!/usr/bin/env python3
"""Prepare WORK_DIR for the rostests: two small arm models and one of the two-arc
motion with its data gap (trained afresh, seconds on a CPU), the data they were
trained on, and no state left from a previous run."""
import os
import shutil
import sys

import numpy as np

from latent_geodesics.data import arm_dataset, two_arcs
from latent_geodesics.model.iwae import save_model
from latent_geodesics.model.training import train_iwae
from latent_geodesics.sim.arcs import JOINT_NAMES as ARC_JOINTS

work = os.path.realpath(sys.argv[1])
os.makedirs(work, exist_ok=True)
for previous_run in ("active_learning", "any_teacher"):
    shutil.rmtree(os.path.join(work, previous_run), ignore_errors=True)
arm = arm_dataset(n_demos=80, seed=1)
np.savez(os.path.join(work, "fixture_data.npz"), data=arm.data,
         joint_names=np.array(arm.joint_names))   # for the active learner's round 0
for name, seed in (("fixture_model", 1), ("fixture_model_b", 2)):
    out = os.path.join(work, name)
    shutil.rmtree(out, ignore_errors=True)
    model, report = train_iwae(arm.data, arm.joint_names, epochs=40, seed=seed,
                               device="cpu", progress=False)
    save_model(model, out, model.meta)
    print("fixture model %s: held-out RMSE %.3f rad" % (out, report.held_out.rmse))

arcs = two_arcs()
np.savez(os.path.join(work, "arcs_data.npz"), data=arcs, joint_names=np.array(ARC_JOINTS))
out = os.path.join(work, "arcs_model")
shutil.rmtree(out, ignore_errors=True)
model, report = train_iwae(arcs, ARC_JOINTS, epochs=40, seed=0, device="cpu", progress=False)
save_model(model, out, model.meta)
print("fixture model %s: held-out RMSE %.3f rad" % (out, report.held_out.rmse))
