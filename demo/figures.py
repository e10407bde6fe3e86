"""The demo's figures: each pair in joint space and over time against the
demonstrations and the straight line, the latent space with the served geodesics,
joint angles and velocities along pair 1, and the active-learning rounds."""
import os

import numpy as np
import torch

from demo.task import BOX, HOLE, PICK, PLACE
from latent_geodesics.files import atomic_write
from latent_geodesics.model.iwae import load_model
from latent_geodesics.serving.fidelity import RecordedData, chord
from latent_geodesics.sim.arm import fingertip

# The joint-space view: the arm turns from the pick to the place on joint 1 and lifts
# over the box on joint 2, so these two show a carry's curve and the straight line's.
VIEW = (0, 1)
DEMOS_DRAWN = 60   # recorded carries drawn behind each panel (every k-th)


def chord_trajectory(q_start, q_goal, limits, n=60):
    """The joint-space straight line timed under the same limits."""
    from latent_geodesics.serving.trajectory import time_parametrize
    timing = time_parametrize(np.linspace(q_start, q_goal, n), limits)
    return timing.times, timing.positions


def hole_routes(teacher):
    """The teacher's carries to places in the hole (never demonstrated): (P, T, 7)."""
    inside = (teacher.places > HOLE[0]) & (teacher.places < HOLE[1])
    return teacher.bank[inside]


def encoded(model, poses):
    with torch.no_grad():
        x = torch.as_tensor(np.reshape(poses, (-1, model.x_dim)), dtype=torch.float32)
        return model.encode(x).double().numpy()


def draw_joint_space(ax, carry, teacher, curves, names):
    """Joints VIEW: recorded carries (grey), the hole's carries nobody demonstrated
    (magenta), and `curves` [(label, (T, 7), style)]."""
    for k, demo in enumerate(carry.demos[::max(1, len(carry.demos) // DEMOS_DRAWN)]):
        ax.plot(demo[:, VIEW[0]], demo[:, VIEW[1]], color="0.6", lw=0.6, alpha=0.6,
                label="recorded carries" if k == 0 else None)
    for k, route in enumerate(hole_routes(teacher)[::4]):
        ax.plot(route[:, VIEW[0]], route[:, VIEW[1]], ":", color="m", lw=0.9,
                label="never demonstrated (the hole)" if k == 0 else None)
    for label, q, style in curves:
        ax.plot(q[:, VIEW[0]], q[:, VIEW[1]], style, lw=2.2, label=label)
        ax.plot(q[0, VIEW[0]], q[0, VIEW[1]], "ko", ms=5)
        ax.plot(q[-1, VIEW[0]], q[-1, VIEW[1]], "k*", ms=9)
    ax.set_xlabel("%s (rad): turns the arm from pick to place" % names[VIEW[0]])
    ax.set_ylabel("%s (rad): lifts" % names[VIEW[1]])


def draw_hand(ax, curves):
    """The hand's path seen from the front (y, z), with the box and the spots."""
    from matplotlib.patches import Rectangle
    (cx, cy, cz), (hx, hy, hz) = BOX
    ax.add_patch(Rectangle((cy - hy, cz - hz), 2 * hy, 2 * hz, color="0.3", alpha=0.5,
                           label="the box"))
    ax.axhline(0.0, color="k", lw=0.8)
    for label, q, style in curves:
        tip = fingertip(q).numpy()
        ax.plot(tip[:, 1], tip[:, 2], style, lw=2.2, label=label)
    ax.plot([PICK[0], PLACE[0]], [PICK[1], PLACE[1]], "ks", ms=6, label="pick, place")
    ax.set_xlabel("hand y (m)")
    ax.set_ylabel("hand height z (m)")
    ax.set_aspect("equal", adjustable="datalim")


def draw_distance(ax, recorded, curves):
    """Each curve's distance to the nearest recorded pose along the motion."""
    for label, q, style in curves:
        d = recorded.tree.query(q)[0]
        ax.plot(np.linspace(0, 1, len(d)), d, style, lw=2, label=label)
    ax.set_xlabel("fraction of the motion")
    ax.set_ylabel("distance to the nearest recorded pose (rad)")
    ax.set_ylim(bottom=0)


def pair_curves(r):
    q = np.array([p.positions for p in r["trajectory"].points])
    return [("served (~nn_geodesic)", q, "C0-"),
            ("joint straight line", chord(q[0], q[-1], 0.02), "k--"),
            ("the recorded carry between them", r["demonstration"], "C2-.")]


def write_pairs_figure(results, out, carry, teacher):
    """pairs.png: one row per pair: joint space, the hand's path, distance to data."""
    import matplotlib.pyplot as plt
    recorded = RecordedData(carry.data)
    fig, axes = plt.subplots(len(results), 3, figsize=(17, 4.6 * len(results)),
                             squeeze=False)
    for k, (r, row) in enumerate(zip(results, axes)):
        curves = pair_curves(r)
        draw_joint_space(row[0], carry, teacher, curves, r["joint_names"])
        draw_hand(row[1], curves)
        draw_distance(row[2], recorded, curves[:2])
        row[0].set_title("pair %d: served %.3f rad from the data, straight line %.3f"
                         % (k + 1, r["data_distance"], r["chord_data_distance"]))
        row[1].set_title("the hand, seen from the front")
        row[2].set_title("distance to the demonstrations along the motion")
    for ax in axes[0]:
        ax.legend(fontsize=8, loc="best", framealpha=0.85)
    fig.tight_layout()
    save_png(fig, os.path.join(out, "pairs.png"))
    plt.close(fig)


def write_latent_figure(model, graph, results, out, teacher):
    """latent_geodesics.png: one panel per pair over the served metric's log MF."""
    import matplotlib.pyplot as plt

    from latent_geodesics.geometry.plots import draw_latent
    z = model.latents
    hole = encoded(model, hole_routes(teacher)[::2])
    fig, axes = plt.subplots(1, len(results), figsize=(6.2 * len(results), 5.6),
                             squeeze=False, constrained_layout=True)
    for k, (r, ax) in enumerate(zip(results, axes[0])):
        i, j = r["pair"]
        paths = [("served geodesic", r["refined_path"], "C1-"),
                 ("straight latent line", np.stack([z[i], z[j]]), "w:")]
        marks = [("carries in the hole, encoded (never demonstrated)", hole, "m,")]
        im = draw_latent(ax, graph.decoder, z, paths, resolution=90, marks=marks,
                         legend=k == 0)
        ax.set_title("pair %d: poses %d to %d" % (k + 1, i, j))
    if model.z_dim > 2:
        fig.suptitle("The %d-D latent space on the plane through the data's mean along its "
                     "two principal directions (log MF on that slice)" % model.z_dim)
    fig.colorbar(im, ax=axes[0].tolist(), label="log magnification factor (served metric)")
    save_png(fig, os.path.join(out, "latent_geodesics.png"))
    plt.close(fig)


def write_figures(model, graph, results, out, limits, carry, teacher):
    write_pairs_figure(results, out, carry, teacher)
    write_latent_figure(model, graph, results, out, teacher)
    write_joint_angles(results[0], out, limits)


def write_joint_angles(r, out, limits):
    """joint_angles.png: pair 1's joints over time along the served motion and along
    the joint straight line, and the served motion's velocities against the limits."""
    import matplotlib.pyplot as plt
    times = [p.time_from_start.to_sec() for p in r["trajectory"].points]
    q = np.array([p.positions for p in r["trajectory"].points])
    v = np.array([p.velocities for p in r["trajectory"].points])
    st, sq = chord_trajectory(q[0], q[-1], limits)
    styles = ["-", "--", "-.", ":"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), sharex=True)
    for ax, (title, t, x) in zip(axes, [("along the served motion", times, q),
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
    for level in (1.0, -1.0):
        ax.axhline(level, color="k", ls="--", lw=1)
    ax.set_ylim(-1.1, 1.1)
    ax.set_title("Joint velocity / limit (TOPP-RA, time-optimal)")
    ax.set_xlabel("time [s]")
    axes[2].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle("Pair 1: data poses %d to %d. The straight line is shorter in joint space, "
                 "so it is faster (%.1f s against %.1f s), but it leaves the demonstrations%s"
                 % (*r["pair"], st[-1], times[-1], " and sweeps the arm through the box"
                    if r["chord_through_box"] else ""))
    fig.tight_layout()
    save_png(fig, os.path.join(out, "joint_angles.png"))
    plt.close(fig)


def write_queries_figure(rounds, out, teacher):
    """active_learning_queries.png: each round's queries over the MF map of the model
    that asked them, the hole's carries encoded by that model."""
    import matplotlib.pyplot as plt

    from latent_geodesics.geometry.plots import draw_latent
    asked = [r for r in rounds if r["asked_by"]]
    fig, axes = plt.subplots(1, len(asked), figsize=(6 * len(asked), 5.4), squeeze=False,
                             constrained_layout=True)
    for ax, r in zip(axes[0], asked):
        model = load_model(r["asked_by"], "cpu")
        q, refused = r["queries"].reshape(-1, model.z_dim), r["query_refused"]
        marks = [("carries in the hole, encoded (never demonstrated)",
                  encoded(model, hole_routes(teacher)[::2]), "m,"),
                 ("answered queries (demonstrated)", q[~refused], "ro"),
                 ("refused queries", q[refused], "kx")]
        im = draw_latent(ax, model, model.latents, resolution=80, marks=marks,
                         legend=ax is axes[0][0])
        ax.set_title("round %d: %d of %d queries in the hole" % (
            r["round"], r["queries_in_hole"], len(q)))
        fig.colorbar(im, ax=ax, label="log magnification factor")
    fig.suptitle("Each round's model has latent coordinates of its own: compare queries "
                 "with the data in the same panel, not across panels")
    save_png(fig, os.path.join(out, "active_learning_queries.png"))
    plt.close(fig)


def write_hole_figure(rounds, out, carry, teacher):
    """active_learning_hole.png: per place in the hole, the served motion after each
    round against the teacher's carry (joint space), and the worst deviation per round."""
    import matplotlib.pyplot as plt
    places = [h["place"] for h in rounds[0]["hole"]]
    fig, axes = plt.subplots(1, len(places) + 1, figsize=(5.6 * (len(places) + 1), 4.8))
    for k, (ax, place) in enumerate(zip(axes, places)):
        curves = [("round %d" % r["round"], r["hole"][k]["positions"], "C%d-" % r["round"])
                  for r in rounds if "positions" in r["hole"][k]]
        curves.append(("the teacher's carry", teacher.route(place), "k--"))
        draw_joint_space(ax, carry, teacher, curves, teacher.joint_names)
        ax.set_title("served carry to x = %.3f m (in the hole)" % place)
    axes[0].legend(fontsize=8, loc="best", framealpha=0.85)
    ax = axes[-1]
    x = [r["round"] for r in rounds]
    for key, label, style in (("deviation", "largest deviation from the teacher's carry (rad)",
                               "o-"), ("data_distance", "distance to the demonstrations (rad)",
                                       "s--")):
        ax.plot(x, [max(h.get(key, np.nan) for h in r["hole"]) for r in rounds], style,
                label=label)
    ax.set_xticks(x)
    ax.set_xlabel("round (0: before active learning)")
    ax.set_title("served carries in the hole, worst place (lower is better)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, os.path.join(out, "active_learning_hole.png"))
    plt.close(fig)


def write_active_learning_figures(rounds, out, carry, teacher):
    write_queries_figure(rounds, out, teacher)
    write_hole_figure(rounds, out, carry, teacher)


def save_png(fig, path):
    """The figure as a PNG file, written whole or not at all (files.atomic_write)."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=90))
