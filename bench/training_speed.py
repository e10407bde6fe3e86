"""Training speed at equal quality: the previous defaults (batch 128, lr 2e-3, 150
epochs, every epoch on the 10-sample bound) against today's (batch and lr from the
data and device, the one-sample bound for the first 80 % of at most 100 epochs),
on the demo's data, several seeds, same device; and one active-learning round's
fine-tuning from a trained model with new demonstrations: 30 epochs of the previous
schedule against the loop's default epochs of today's."""
import functools
import time

import numpy as np

from latent_geodesics.data import arm_dataset, laikago_dataset
from latent_geodesics.learning.loop import LoopConfig
from latent_geodesics.model.training import train_iwae

PREVIOUS = dict(batch_size=128, lr=2e-3, epochs=150, elbo_fraction=0.0, noise_floor=0.0)


def _train(data, names, device, seed, init=None, **config):
    start = time.perf_counter()
    model, report = train_iwae(data, names, seed=seed, device=device, init=init,
                               progress=False, **config)
    held = report.held_out
    return model, {"seconds": time.perf_counter() - start, "rmse": held.rmse,
                   "bound": held.iwae_bound, "epochs_run": report.epochs_run}


def _summary(rows):
    keys = ("seconds", "rmse", "bound")
    out = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    out.update({k + "_sd": float(np.std([r[k] for r in rows])) for k in keys})
    out.update({k + "_median": float(np.median([r[k] for r in rows])) for k in keys})
    return out


@functools.lru_cache(maxsize=1)
def _demo_data():
    return arm_dataset(n_demos=200, hole=True, seed=0)   # the demo's data, simulated once


def _data(dataset, seed):
    """(initial data, data after a round of new demonstrations, joint names)."""
    if dataset == "laikago":   # the recording: its last tenth arrives as the new data
        data, names = laikago_dataset()
        return data[:len(data) * 9 // 10], data, names
    arm = _demo_data()
    extra = arm_dataset(n_demos=10, seed=100 + seed).data   # a round's new poses
    return arm.data, np.concatenate([arm.data, extra]), arm.joint_names


def training_speed(device="cpu", seeds=tuple(range(8)), dataset="arm", log=print):
    runs = {"previous": [], "today": []}
    fine = {"previous": [], "today": []}
    for seed in seeds:
        initial, data, names = _data(dataset, seed)
        for name, config in (("previous", PREVIOUS), ("today", {})):
            model, row = _train(initial, names, device, seed, **config)
            runs[name].append(row)
            log("training %s seed %d %s: %.1f s, RMSE %.4f" % (
                dataset, seed, name, row["seconds"], row["rmse"]))
        for name, config in (("previous", dict(PREVIOUS, epochs=30)),
                             ("today", {"epochs": LoopConfig().epochs})):
            fine[name].append(_train(data, names, device, seed, init=model,
                                     **config)[1])   # both from today's model
    return {"device": str(device), "seeds": list(seeds), "rows": len(initial),
            "dataset": dataset, "fine_tune_epochs": LoopConfig().epochs,
            "runs": runs, "train": {k: _summary(v) for k, v in runs.items()},
            "fine_tune": {k: _summary(v) for k, v in fine.items()}}


def report_lines(result):
    t, f = result["train"], result["fine_tune"]
    line = "| %s | %s | %.1f ± %.1f s | %.4f ± %.4f (%.4f) | %.3f ± %.3f (%.3f) |"
    data = {"arm": "simulated arm", "laikago": "laikago recording"}[result.get("dataset", "arm")]
    md = ["", "## 9%s. Training speed at equal quality: %s (%s, %d poses, seeds %s)"
          % ("" if data == "simulated arm" else "b", data, result["device"], result["rows"],
             ", ".join(map(str, result["seeds"]))),
          "Previous defaults: batch 128, lr 2e-3, 150 epochs on the 10-sample bound, no "
          "noise floor. Today: decoder noise floor 0.05, batch = data / 16 (at most 512 "
          "on a CPU, 4096 on a GPU), lr 2e-3 x batch / 128 (at most 1e-2; "
          "a quarter of it when fine-tuning), at most 100 epochs, the first 80 %% on the "
          "one-sample bound. Fine-tuning: 30 epochs (previous) and the active-learning loop's "
          "default, %d (today), from today's model of the same seed on its data and new poses "
          "(arm: 10 new demonstrations; laikago: the recording's last tenth, held back from "
          "the first training). Held-out RMSE (rad) and IWAE bound (nats, normalised units, "
          "higher is better): mean ± sd (median) over seeds." % result.get("fine_tune_epochs",
                                                                          30), "",
          "| | configuration | wall time | held-out RMSE | held-out bound |",
          "|---|---|---|---|---|"]
    for what, table in (("training", t), ("fine-tuning", f)):
        for key, name in (("previous", "previous defaults"), ("today", "today's defaults")):
            s = table[key]
            md.append(line % (what, name, s["seconds"], s["seconds_sd"], s["rmse"],
                              s["rmse_sd"], s["rmse_median"], s["bound"], s["bound_sd"],
                              s["bound_median"]))
    md += ["", "Speed-up: training %.1fx (RMSE ratio %.3f mean, %.3f median; bound ratio "
           "%.3f); fine-tuning %.1fx (RMSE ratio %.3f mean, %.3f median). Target: >= 4x at "
           "RMSE within 2 %%." % (
               t["previous"]["seconds"] / t["today"]["seconds"],
               t["today"]["rmse"] / t["previous"]["rmse"],
               t["today"]["rmse_median"] / t["previous"]["rmse_median"],
               t["today"]["bound"] / t["previous"]["bound"],
               f["previous"]["seconds"] / f["today"]["seconds"],
               f["today"]["rmse"] / f["previous"]["rmse"],
               f["today"]["rmse_median"] / f["previous"]["rmse_median"])]
    return md


if __name__ == "__main__":
    import json
    import sys
    result = training_speed(sys.argv[1] if len(sys.argv) > 1 else "cpu")
    print(json.dumps({k: result[k] for k in ("train", "fine_tune")}, indent=1))
    print("\n".join(report_lines(result)))
