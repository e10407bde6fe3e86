"""Conservative sphere covers of solid geometry: every point of the solid lies inside
some sphere, and no sphere reaches much farther than `resolution` beyond it.

The robot's links are checked as spheres because a sphere's clearance to any object
is one signed distance minus a radius, batched over thousands of configurations;
meshes (of links or of objects) are held the same way. Each cover is an (M, 4) array
of centres and radii in the geometry's own frame.
"""
import numpy as np

# A box or mesh cover of more spheres than these is coarsened (still conservative):
# a link of thousands of spheres would slow every check for little gain; a sphere
# file gives a finer cover where one is wanted.
MAX_SPHERES = 512
MAX_MESH_SPHERES = 4096


def sphere_cover(radius):
    return np.array([[0.0, 0.0, 0.0, float(radius)]])


def cylinder_cover(radius, length, resolution):
    """n spheres along the axis (z), each covering a slice of length h/n: radius
    sqrt(r² + (h/2n)²) reaches at most `resolution` beyond the mantle. Tight for long
    thin links; at the flat ends the cover bulges by up to about r (inherent to
    spheres on the axis)."""
    r, h = float(radius), float(length)
    half_slice = np.sqrt((r + resolution) ** 2 - r ** 2)
    n = max(1, int(np.ceil(h / (2.0 * half_slice))))
    z = -h / 2 + (np.arange(n) + 0.5) * h / n
    out = np.zeros((n, 4))
    out[:, 2] = z
    out[:, 3] = np.sqrt(r ** 2 + (h / (2 * n)) ** 2)
    return out


def box_cover(size, resolution):
    """A grid of cells, each covered by its circumsphere: a cell of sides d reaches
    |d|/2 - min(d)/2 beyond a face, so the longest cell side is halved until that is
    within `resolution` (or the cover would exceed MAX_SPHERES)."""
    size = np.asarray(size, float)
    n = np.ones(3, int)
    while True:
        cell = size / n
        if np.linalg.norm(cell) / 2 - cell.min() / 2 <= resolution:
            break
        trial = n.copy()
        trial[np.argmax(cell)] *= 2
        if np.prod(trial) > MAX_SPHERES:
            break
        n = trial
    cell = size / n
    axes = [-size[i] / 2 + (np.arange(n[i]) + 0.5) * cell[i] for i in range(3)]
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    return np.hstack([centres, np.full((len(centres), 1), np.linalg.norm(cell) / 2)])


def mesh_cover(vertices, faces, resolution):
    """Voxel cells of pitch p that can hold a point of the solid, each covered by its
    circumsphere (radius p·√3/2). trimesh's subdivision voxelizes the surface (every
    edge < p/2, vertices rounded to cell centres) and fills the closed shell's inside;
    one dilation then adds every cell that holds a surface point (such a point lies
    within 1.5 p, per axis, of a voxelized vertex's centre, so in that cell or a
    neighbour), and an inside point's own cell is either filled or crossed by the
    surface, hence in the dilated shell."""
    import trimesh
    from scipy import ndimage
    mesh = trimesh.Trimesh(np.asarray(vertices, float), np.asarray(faces, int), process=True)
    extent = float(np.max(mesh.extents)) if len(mesh.vertices) else 0.0
    if not np.isfinite(extent) or extent <= 0 or len(mesh.faces) == 0:
        raise ValueError("mesh has no extent (no faces or all vertices in one point); "
                         "give a closed triangle mesh")
    pitch = max(float(resolution), extent / 64.0)
    while True:
        grid = mesh.voxelized(pitch, method="subdivide", max_iter=None).fill()
        matrix = ndimage.binary_dilation(np.pad(grid.matrix, 1),
                                         structure=np.ones((3, 3, 3), bool))
        if matrix.sum() <= MAX_MESH_SPHERES or pitch >= extent:
            break
        pitch *= 1.5   # coarser cells: fewer spheres, still a cover
    index = np.argwhere(matrix) - 1   # undo the padding
    centres = grid.indices_to_points(index)
    return np.hstack([centres, np.full((len(centres), 1), pitch * np.sqrt(3) / 2)])


def transform_cover(spheres, pose):
    """Spheres (M, 4) moved by a 4x4 pose (rigid: radii unchanged)."""
    spheres = np.asarray(spheres, float).reshape(-1, 4)
    pose = np.asarray(pose, float)
    centres = spheres[:, :3] @ pose[:3, :3].T + pose[:3, 3]
    return np.hstack([centres, spheres[:, 3:]])
