"""Figures of a 2-D latent space: MF heatmap, data, paths.

Figures are built with matplotlib's object API (Figure + Agg canvas), not pyplot:
the server renders its MF map from service threads, and pyplot is not thread-safe.
"""
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .geometry import log_magnification_factor


def latent_bounds(latents, margin=0.15):
    lo, hi = latents.min(0), latents.max(0)
    pad = margin * (hi - lo)
    return lo - pad, hi + pad


def mf_grid(decoder, latents, resolution=128, extra=()):
    """log MF over a grid covering the data and any `extra` points:
    (extent, (res, res) array), one batch."""
    lo, hi = latent_bounds(np.vstack([latents] + [np.asarray(e)[:, :2] for e in extra]))
    gx = np.linspace(lo[0], hi[0], resolution)
    gy = np.linspace(lo[1], hi[1], resolution)
    grid = np.stack(np.meshgrid(gx, gy, indexing="xy"), -1).reshape(-1, 2)
    with torch.no_grad():
        log_mf = log_magnification_factor(decoder, grid).double().cpu().numpy()
    return (lo[0], hi[0], lo[1], hi[1]), log_mf.reshape(resolution, resolution)


def draw_latent(ax, decoder, latents, paths=(), title="", resolution=128, queries=None,
                marks=(), legend=True):
    """On ax: log MF heatmap (covering everything drawn), data points, labelled
    latent paths with start (o) and goal (*) markers, query crosses, and other
    labelled point sets `marks` [(label, points, marker style)]."""
    extra = [p for _, p, _ in paths] + [p for _, p, _ in marks]
    if queries is not None:
        extra.append(queries)
    extent, log_mf = mf_grid(decoder, latents, resolution, extra)
    im = ax.imshow(log_mf, origin="lower", extent=extent, cmap="viridis", aspect="auto")
    ax.scatter(latents[:, 0], latents[:, 1], s=3, c="white", edgecolors="none", alpha=0.7,
               label="data (encoded poses)")
    for label, points, style in paths:
        line, = ax.plot(points[:, 0], points[:, 1], style, lw=2, label=label)
        ax.plot(*points[0, :2], "o", color=line.get_color(), ms=6, mec="k")
        ax.plot(*points[-1, :2], "*", color=line.get_color(), ms=11, mec="k")
    for label, points, style in marks:
        ax.plot(points[:, 0], points[:, 1], style, ms=7, mew=2, label=label, ls="none")
    if queries is not None:
        ax.scatter(queries[:, 0], queries[:, 1], marker="x", c="red", s=60, linewidths=2,
                   label="queries")
    ax.set_xlim(extent[0], extent[1])   # the heatmap fills the axes: no blank band
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(title)
    if legend:
        ax.legend(loc="upper right", fontsize=7, framealpha=0.85)
    return im


def latent_figure(decoder, latents, paths=(), title="", resolution=128, queries=None,
                  marks=(), size=(6, 5)):
    """Figure: log MF heatmap, data points, and labelled latent paths."""
    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    im = draw_latent(ax, decoder, latents, paths, title, resolution, queries, marks)
    fig.colorbar(im, ax=ax, label="log magnification factor")
    fig.tight_layout()
    return fig


def figure_rgb(fig):
    """Render a figure to an (H, W, 3) uint8 array."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
