"""The demo's figures: the latent space with the served geodesics, joint angles and
velocities along one, and the active-learning rounds."""
import os

import numpy as np
import torch

from latent_geodesics.files import atomic_write
from latent_geodesics.model.iwae import load_model


def chord_trajectory(q_start, q_goal, limits, n=60):
    """The joint-space straight line timed under the same limits."""
    from latent_geodesics.serving.trajectory import time_parametrize
    timing = time_parametrize(np.linspace(q_start, q_goal, n), limits)
    return timing.times, timing.positions


def leaves_data(graph, points):
    """How far a latent path gets from the data, and the server's refusal limit."""
    return float(graph.tree.query(points)[0].max()), graph.outside_factor * graph.reach


def hole_latents(model, seed=7):
    """Encoded held-out poses whose targets lie in the arm's data hole."""
    from latent_geodesics.learning.evaluation import arm_goal_poses
    inside = arm_goal_poses(120, seed)[0]
    with torch.no_grad():
        return model.encode(torch.as_tensor(inside, dtype=torch.float32)).double().numpy()


def write_figures(model, graph, results, out, limits):
    import matplotlib.pyplot as plt

    from latent_geodesics.geometry.plots import latent_figure
    z = model.latents
    paths = []
    for k, r in enumerate(results):
        i, j = r["pair"]
        tag = "pair %d (%d to %d)" % (k + 1, i, j)
        far, limit = leaves_data(graph, r["refined_path"])
        flag = ", leaves the data by %.2f (> limit %.2f)" % (far, limit) if far > limit else ""
        # One colour a pair; the straight latent line dashed and thin, drawn on top.
        paths += [(tag + ": served geodesic, %.2f rad from the data%s" % (
                       r["data_distance"], flag), r["refined_path"], "C%d-" % (k + 1)),
                  (tag + ": straight latent line", np.stack([z[i], z[j]]), "C%d:" % (k + 1))]
    marks = [("held-out poses in the data hole (never demonstrated)", hole_latents(model),
              "mx")]
    fig = latent_figure(graph.decoder, z, paths, "Latent space: log MF of the served metric, "
                        "data, geodesics (o start, * goal)", 120, marks=marks, size=(10, 7.5))
    save_png(fig, os.path.join(out, "latent_geodesics.png"))
    r = results[0]
    i, j = r["pair"]
    times = [p.time_from_start.to_sec() for p in r["trajectory"].points]
    q = np.array([p.positions for p in r["trajectory"].points])
    v = np.array([p.velocities for p in r["trajectory"].points])
    st, sq = chord_trajectory(q[0], q[-1], limits)
    styles = ["-", "--", "-.", ":"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), sharex=True)
    for ax, (title, t, x) in zip(axes, [("along the served geodesic", times, q),
                                        ("along the joint straight line", st, sq)]):
        for d in range(x.shape[1]):
            ax.plot(t, x[:, d], styles[d % 4], lw=1.8, label=r["joint_names"][d])
        ax.set_title("Joint angles " + title)
        ax.set_xlabel("time [s]")
        ax.set_ylabel("angle [rad]")
    ax = axes[2]
    for d in range(v.shape[1]):
        ax.plot(times, v[:, d] / limits.velocity[d], styles[d % 4], lw=1.8,
                label=r["joint_names"][d])
    ax.axhline(1.0, color="k", ls="--", lw=1)
    ax.axhline(-1.0, color="k", ls="--", lw=1)
    ax.set_ylim(-1.1, 1.1)
    ax.set_title("Joint velocity / limit (TOPP-RA, time-optimal)")
    ax.set_xlabel("time [s]")
    axes[2].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle("Pair 1: data poses %d to %d" % (i, j))
    fig.tight_layout()
    save_png(fig, os.path.join(out, "joint_angles.png"))
    plt.close(fig)


def write_active_learning_figures(rounds, out):
    import matplotlib.pyplot as plt

    from latent_geodesics.geometry.plots import draw_latent
    asked = [r for r in rounds if r["asked_by"]]
    fig, axes = plt.subplots(1, len(asked), figsize=(5.5 * len(asked), 4.8), squeeze=False)
    for ax, r in zip(axes[0], asked):
        model = load_model(r["asked_by"], "cpu")
        q, refused = r["queries"].reshape(-1, model.z_dim), r["query_refused"]
        marks = [("the data hole (held-out poses, never demonstrated)", hole_latents(model),
                  "mx"), ("answered queries (demonstrated)", q[~refused], "ro"),
                 ("refused queries (collision or limits)", q[refused], "kx")]
        im = draw_latent(ax, model, model.latents, title="round %d: queries of the model it "
                         "started with" % r["round"], resolution=96, marks=marks,
                         legend=ax is axes[0][0])
        fig.colorbar(im, ax=ax, label="log magnification factor")
    fig.suptitle("Each round's model has latent coordinates of its own: compare queries "
                 "with the data in the same panel, not across panels")
    fig.tight_layout()
    save_png(fig, os.path.join(out, "active_learning_queries.png"))
    plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    x = [r["total"] for r in rounds]
    for ax, key, label in zip(axes, ("smoothness", "max_log_mf", "held_out_rmse"),
                              ("largest step / mean step along held-out geodesics",
                               "largest log MF along them", "held-out RMSE [rad]")):
        y = np.array([r[key] for r in rounds])
        ax.plot(x, y, "o-", label="after each round")
        ax.axhline(y[0], color="grey", ls="--", lw=1, label="round 0 (initial model)")
        middle, half = y.mean(), max(np.ptp(y), 0.2 * abs(y.mean()) + 1e-9)
        ax.set_ylim(middle - half, middle + half)   # no magnified noise
        ax.set_xlabel("demonstrations")
        ax.set_title("%s\n(lower is better)" % label, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, os.path.join(out, "active_learning_metrics.png"))
    plt.close(fig)


def save_png(fig, path):
    """The figure as a PNG file, written whole or not at all (files.atomic_write)."""
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
