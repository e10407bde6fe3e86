"""Issue-style speed table on one device: training at several batch sizes, the graph
build at 10k / 100k / 1M nodes against its floor (kNN + decoding every edge's
samples), refinement and the magnification factor. Every row is measured in this
run; the floor and the previous training defaults are the baselines."""
import time

import numpy as np
import torch
from scipy.spatial import cKDTree

from latent_geodesics.data import arm_dataset
from latent_geodesics.geometry.metric import decode, magnification_factor
from latent_geodesics.geometry.refinement import refined_geodesic
from latent_geodesics.graph.latent_graph import LatentGraph, unique_pairs
from latent_geodesics.model.iwae import IWAE
from latent_geodesics.model.training import train_iwae


def seconds(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def training_rows(device):
    arm = arm_dataset(n_demos=200, hole=True, seed=0)
    rows = []
    configs = [("150 epochs, batch 128 (previous defaults)",
                dict(epochs=150, batch_size=128, lr=2e-3, elbo_fraction=0.0, noise_floor=0.0)),
               ("today's defaults", {})]
    configs += [("60 epochs, batch %s" % (b or "full"), dict(epochs=60, batch_size=b or 4500,
                                                            elbo_fraction=0.0))
                for b in (128, 1024, 0)]
    for name, config in configs:
        (model, report), t = seconds(train_iwae, arm.data, arm.joint_names, seed=0,
                                     device=device, progress=False, **config)
        rows.append({"what": "train " + name, "seconds": t,
                     "note": "held-out RMSE %.3f rad" % report.held_out.rmse})
    return rows, model


def graph_rows(device, sizes=(10_000, 100_000, 1_000_000)):
    torch.manual_seed(0)
    decoder = IWAE(7, 2).to(device).eval().requires_grad_(False)
    rows = []
    for n in sizes:
        nodes = np.random.default_rng(0).normal(size=(n, 2))
        graph, build = seconds(LatentGraph, decoder, nodes, k=10, n_samples=10)
        (dist, idx), knn = seconds(lambda p=nodes: cKDTree(p).query(p, 11, workers=-1))
        pairs, dedup = seconds(unique_pairs, idx, n, dist)
        t = torch.linspace(0, 1, 10, dtype=torch.float64)
        samples = 0.0
        for i in range(0, len(pairs), 1 << 16):   # every edge's samples, decoded
            p = pairs[i:i + (1 << 16)]
            a, b = torch.as_tensor(nodes[p[:, 0]]), torch.as_tensor(nodes[p[:, 1]])
            z = (a[:, None] + t[None, :, None] * (b - a)[:, None]).reshape(-1, 2)
            samples += seconds(decode, decoder, z.to(device=device, dtype=torch.float32),
                               1 << 16)[1]
        floor = knn + samples
        rows.append({"what": "graph build N = %d (%d edges)" % (n, len(graph.edges)),
                     "seconds": build,
                     "note": "floor %.2f s (kNN %.2f + decoding edges %.2f): %.2fx; "
                             "deduplication %.2f s" % (floor, knn, samples, build / floor,
                                                        dedup)})
    return rows


def geometry_rows(model, device):
    graph = LatentGraph(model, model.latents, k=10, n_samples=10)
    z = model.latents
    rng = np.random.default_rng(0)
    pairs = [tuple(rng.choice(len(z), 2, replace=False)) for _ in range(5)]
    refined_geodesic(graph, z[pairs[0][0]], z[pairs[0][1]])   # warm-up
    times = [seconds(refined_geodesic, graph, z[i], z[j])[1] for i, j in pairs]
    g = torch.linspace(-2, 2, 512, device=device)
    grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    magnification_factor(model, grid[:1024])   # warm-up
    _, mf = seconds(magnification_factor, model, grid)
    return [{"what": "refinement (graph + polyline), 5 pairs", "seconds": float(np.mean(times)),
             "note": "mean per pair"},
            {"what": "MF on a 512 x 512 grid", "seconds": mf, "note": "batched Jacobians"}]


def speed_table(device="cpu", log=print):
    device = torch.device(device)
    rows, model = training_rows(device)
    log("   training rows done")
    rows += graph_rows(device)
    log("   graph rows done")
    return {"device": str(device), "rows": rows + geometry_rows(model, device)}


def report_lines(result):
    md = ["", "## 11. The speed issue's table, measured here (%s)" % result["device"],
          "Training on the demo's arm data (5,000 poses, seed 0); graph builds on an "
          "IWAE-sized decoder over N standard-normal 2-D points, against their floor in "
          "the same run; refinement and MF on today's default arm model.", "",
          "| measure | seconds | against the baseline |", "|---|---|---|"]
    md += ["| %s | %.2f | %s |" % (r["what"], r["seconds"], r["note"])
           for r in result["rows"]]
    return md


if __name__ == "__main__":
    import sys
    print("\n".join(report_lines(speed_table(sys.argv[1] if len(sys.argv) > 1 else "cpu"))))
