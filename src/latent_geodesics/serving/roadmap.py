"""The way around an object that the bend cannot find: a roadmap in joint space, local
to the blocked stretch of the motion (a probabilistic roadmap, Kavraki et al. 1996,
searched lazily as in Bohlin & Kavraki's Lazy PRM, 2000: only the found path's edges
are checked, the colliding ones dropped, the search run again).

The stretch from the last clear row before the object to the first clear row after
it is replaced by the cheapest clear way through configurations sampled around it:
the recorded poses nearby (ways the demonstrations took), the motion's own clear
rows, and random configurations around the motion within the position limits; a
configuration is kept only when the whole body keeps the aim from every object. An
edge costs its joint length, more the further its ends lie from the recorded data,
so the way leaves the demonstrations only as far as the object demands. The path is
then shortened (a straight joint-space segment replaces a stretch wherever it keeps
clear) and sampled as finely as the motion it replaces. Seeded: the same request gets
the same answer.

Written here rather than taken from OMPL: OMPL's Python bindings check one state per
callback, where the body's check is batched (thousands of configurations per call);
the roadmap is scipy's cKDTree and csgraph over batched checks.
"""
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from latent_geodesics.geometry.curves import smooth
from latent_geodesics.geometry.metric import split
from latent_geodesics.serving.detour import EXTRA

RANDOM_SAMPLES = 800     # random configurations per scale (and anywhere around)
SCALES = (0.05, 0.1, 0.2, 0.4)   # rad: spreads of the random samples about the rows
SPREAD = 0.4             # rad: the neighbourhood of the stretch sampled anywhere
DATA_PER_ROW = 8         # recorded poses nearest each row of the stretch
ROOM = 0.03              # m beyond the aim the stretch's ends keep where the motion allows
ROUNDING = 0.1          # rad between the control points that round the way's corners
CELL = 0.05              # rad: the roadmap keeps one configuration per cell of this side
NEIGHBOURS = 12          # roadmap edges per configuration (its nearest, in joint space)
ROUNDS = 60              # searches before giving up (each drops the colliding edges found)
DATA_SCALE = 0.05        # rad from the recorded data at which an edge costs twice its length
SEED = 0


def around(checker, positions, margin, resolution, limits, recorded=None):
    """positions (T, J) with the stretch that comes within margin (+ EXTRA, the aim)
    of an object replaced by a clear way through a local roadmap; None when the
    roadmap holds no clear way. limits: (lower, upper) joint position arrays (inf
    where none); recorded: the training poses (serving/fidelity.RecordedData) or None."""
    positions = np.asarray(positions, dtype=float)
    aim = margin + EXTRA
    near = checker.violations(positions, margin, resolution)
    if not near.any():
        return positions
    clearance = checker.clearance(positions)[0]
    first, last = anchors(clearance, np.flatnonzero(near), aim)
    # an end nearer than the aim (the request's start or goal) is left at the margin
    check = aim if min(clearance[first], clearance[last]) >= aim else margin
    nodes = roadmap_nodes(checker, positions[first:last + 1], aim, limits, recorded)
    way = search(checker, nodes, check, resolution, recorded)
    if way is None:
        return None
    step = max(np.abs(np.diff(positions, axis=0)).max(initial=0.0), 1e-3)
    way = shortcut(checker, way, check, resolution, recorded)
    # corners rounded (over ROUNDING rad either side) where the rounded way keeps clear:
    # a timing then need not stop at them
    rounded = densify(smooth(densify(way, ROUNDING)), step)
    way = densify(way, step)
    if not checker.violations(rounded, check, resolution).any():
        way = rounded
    return np.vstack([positions[:first], way, positions[last + 1:]])


def anchors(clearance, near_rows, aim):
    """(first, last) rows the replaced stretch runs between: the nearest rows before the
    first and after the last near segment that keep the aim by ROOM (in the open, where
    the roadmap's edges can leave them), else that keep the aim, else the ends."""
    def pick(clear_rows, before):
        rows = clear_rows[clear_rows <= near_rows[0]] if before else \
            clear_rows[clear_rows > near_rows[-1]]
        if not len(rows):
            return None
        return int(rows[-1] if before else rows[0])
    ends = []
    for before, end in ((True, 0), (False, len(clearance) - 1)):
        for room in (ROOM, 0.0):
            row = pick(np.flatnonzero(clearance >= aim + room), before)
            if row is not None:
                break
        ends.append(end if row is None else row)
    return tuple(ends)


def roadmap_nodes(checker, stretch, aim, limits, recorded, seed=SEED):
    """(N, J) configurations of the roadmap, the stretch's ends first: the stretch's
    rows, the recorded poses nearest it and random ones around it (most near the
    motion, at several distances, a few anywhere in its neighbourhood), within the
    limits, each keeping the aim (the ends are kept as they are)."""
    rng = np.random.default_rng(seed)
    lower, upper = (np.asarray(v, dtype=float) for v in limits)
    joints = stretch.shape[1]
    # half about the stretch's rows, half about its ends (where the way must leave)
    rows = stretch[rng.integers(len(stretch), size=(len(SCALES), RANDOM_SAMPLES))]
    rows[:, ::2] = stretch[[0, -1]][rng.integers(2, size=(len(SCALES), (RANDOM_SAMPLES + 1) // 2))]
    near = rows + np.asarray(SCALES)[:, None, None] * rng.normal(size=rows.shape)
    low = np.maximum(stretch.min(axis=0) - SPREAD, lower)
    high = np.minimum(stretch.max(axis=0) + SPREAD, upper)
    candidates = [stretch[1:-1], near.reshape(-1, joints),
                  rng.uniform(low, high, size=(RANDOM_SAMPLES, joints))]
    if recorded is not None:
        nearest = recorded.tree.query(stretch, k=min(DATA_PER_ROW, len(recorded.configurations)))[1]
        candidates.append(recorded.configurations[np.unique(nearest)])
    candidates = np.vstack(candidates)
    candidates = candidates[np.all((candidates >= lower) & (candidates <= upper), axis=1)]
    candidates = thinned(candidates)
    free = checker.clearance(candidates)[0] >= aim
    return np.vstack([stretch[[0, -1]], candidates[free]])


def thinned(configurations, cell=CELL):
    """One configuration per cell of a joint-space grid: the motion's rows and the
    recorded poses come in dense runs, whose nearest neighbours would all be each
    other (a roadmap of disconnected chains) rather than the samples around them."""
    _, first = np.unique(np.floor(configurations / cell).astype(np.int64), axis=0,
                         return_index=True)
    return configurations[np.sort(first)]


def search(checker, nodes, margin, resolution, recorded):
    """(K, J) the cheapest clear way from nodes[0] to nodes[1] over the roadmap, its
    edges checked lazily; None when no clear way is left."""
    k = min(NEIGHBOURS + 1, len(nodes))
    _, nearest = cKDTree(nodes).query(nodes, k=k)
    # each configuration's nearest, as undirected pairs (a neighbour's own list may
    # not hold it back: both directions are kept, once)
    pairs = np.sort(np.c_[np.repeat(np.arange(len(nodes)), k - 1), nearest[:, 1:].ravel()], 1)
    pairs = np.unique(pairs[pairs[:, 0] != pairs[:, 1]], axis=0)
    i, j = pairs[:, 0], pairs[:, 1]
    cost = np.linalg.norm(nodes[j] - nodes[i], axis=1)
    if recorded is not None:
        far = recorded.tree.query(nodes)[0]
        cost *= 1.0 + (far[i] + far[j]) / (2 * DATA_SCALE)
    alive = np.ones(len(i), dtype=bool)
    index = {(a, b): e for e, (a, b) in enumerate(zip(i, j))}
    for _ in range(ROUNDS):
        graph = coo_matrix((cost[alive], (i[alive], j[alive])), shape=(len(nodes),) * 2)
        _, previous = dijkstra(graph.tocsr(), directed=False, indices=0,
                               return_predecessors=True)
        path = walk_back(previous, 1)
        if path is None:
            return None
        bad = checker.violations(nodes[path], margin, resolution)
        if not bad.any():
            return nodes[path]
        for s in np.flatnonzero(bad):
            a, b = sorted((path[s], path[s + 1]))
            alive[index[(a, b)]] = False
    return None


def walk_back(previous, goal):
    """Node indices from the search's source to goal, or None where goal is unreached."""
    if previous[goal] < 0:
        return None
    path = [goal]
    while previous[path[-1]] >= 0:
        path.append(int(previous[path[-1]]))
    return path[::-1]


def shortcut(checker, way, margin, resolution, recorded=None):
    """The way with every stretch that a clear straight segment can replace replaced:
    from each kept row, the furthest row reachable in a straight line that keeps clear
    and no farther from the recorded data than the rows it replaces (all candidates
    checked in one call: the polyline row, candidate, row, candidate, ...)."""
    far = recorded.tree.query(way)[0] if recorded is not None else np.zeros(len(way))
    kept, i = [0], 0
    while i < len(way) - 1:
        later = np.arange(len(way) - 1, i, -1)
        there_and_back = np.empty((2 * len(later), way.shape[1]))
        there_and_back[0::2], there_and_back[1::2] = way[i], way[later]
        bad = checker.violations(there_and_back, margin, resolution)[0::2]
        if recorded is not None:
            bad |= strays(recorded, way[i], way[later], far, i, later)
        i = int(later[np.argmin(bad)]) if not bad.all() else i + 1
        kept.append(i)
    return way[kept]


def strays(recorded, start, ends, far, i, later, samples=8):
    """(len(ends),) bool: which straight segments start -> ends[k] pass farther from the
    recorded data than the way's rows i..later[k] they would replace (+ DATA_SCALE / 2)."""
    t = np.linspace(0.0, 1.0, samples)[None, :, None]
    points = start + t * (ends[:, None, :] - start)
    along = recorded.tree.query(points.reshape(-1, len(start)))[0].reshape(len(ends), -1)
    allowed = np.array([far[i:j + 1].max() for j in later]) + DATA_SCALE / 2
    return along.max(axis=1) > allowed


def densify(way, step):
    """Rows along the polyline so that no joint moves more than step between them
    (geometry's split, uncapped: its rows at the way's own rows are those rows)."""
    pieces = np.ceil(np.abs(np.diff(way, axis=0)).max(axis=1) / step)
    return split(way, pieces, max_points=np.inf)[0]
