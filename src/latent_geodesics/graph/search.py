"""Shortest node paths over a latent graph plus a query's own edges.

The served search is A* with landmark (ALT) lower bounds, run as Dijkstra on
reduced costs in scipy's compiled code. Graph distances d_L from LANDMARKS nodes
(farthest-point spread, computed on the first query) bound a node's remaining
distance to the goal g from below, pi(v) = max_L |d_L(v) - d_L(g)|, over the
ACTIVE landmarks that bound the query best; pi is consistent, so the reduced
weights w(u, v) - pi(u) + pi(v) are never negative, and scipy's Dijkstra on them
from the start s, cut at limit B - pi(s), settles exactly the nodes that A* with
heuristic pi settles whose f = g + h is at most B. scipy cannot stop at the goal,
so B is guessed: the lower bound pi(s) of the distance plus a gap that held for
most of the graph's recent queries, widened until the goal is inside, the last
try being the landmark upper bound min_L d_L(s) + d_L(g). Each try runs on the
candidates' subgraph alone: the nodes whose lower bounds d(s, v) + pi(v) (a
float32 screen over all nodes, with a margin) are within B; so a query costs
O(N ACTIVE) float32 work plus what it settles (measured at N = 10,000: 7-14x
fewer nodes than the bidirectional Dijkstra it replaced, 1.6-6x fewer than the
Python A*).

A start that is not a node is one extra row; a goal that is not a node is
reached through its attachments (an end joined by query edges gets the bound
|d_L(v) - c| + r, see Landmarks.of_end: it stays below the distance even where
the end is a shortcut between its neighbours). `blocked` (CSR positions of
edges a query must not use, e.g. those through an obstacle; positions() maps node
pairs) makes those weights infinite: the lower bounds stay valid, the landmark
upper bound does not, so the last try is unbounded. `astar` is the Python
reference (heuristic ||f(z_v) - f(z_goal)||): both return the same length.
"""
import heapq
from collections import deque
from math import dist

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

LANDMARKS = 32    # nodes whose graph distances bound a query's from below and above
LANDMARK_BYTES = 64 << 20   # fewer landmarks (down to 8) on graphs where 32 take more
FIRST_GAP = 0.03  # first bound: the lower bound plus 3 % (measured: ALT bounds are tight)
GROWTH = 4.0      # each further try widens the gap over the lower bound 4x
GAPS_SEEN = 64    # after this graph's last queries, the first gap is their QUANTILE gap
QUANTILE = 0.75
ACTIVE = 8        # landmarks used per query: those that bound its ends' distance best
SLACK = 1e-5      # float32 screening margin, relative to the largest landmark distance
BIG = np.finfo(float).max   # scipy's limit when unbounded: infinite weights stay out
TIE = 1e-9        # relative margin on bounds: rounding never turns a hit into a miss


class Landmarks:
    """(L, N) graph distances from LANDMARKS nodes spread by farthest-point
    sampling in latent space; float64 for potentials, float32 for screening."""

    def __init__(self, nodes, matrix):
        count = min(LANDMARKS, max(8, LANDMARK_BYTES // (12 * len(nodes))), len(nodes))
        chosen, gap = [0], np.full(len(nodes), np.inf)
        for _ in range(count - 1):
            gap = np.minimum(gap, np.linalg.norm(nodes - nodes[chosen[-1]], axis=1))
            chosen.append(int(np.argmax(gap)))
        dist = dijkstra(matrix, directed=False, indices=chosen)
        # A landmark that misses a component bounds nothing: its row is left out.
        self.dist = dist[np.isfinite(dist).all(1)]
        self.dist32 = self.dist.astype(np.float32)
        self.slack = SLACK * float(self.dist.max(initial=0.0)) + 1e-30

    def of_end(self, end, attached, n):
        """(c, r, near) per landmark for a query end: a node, or a point joined to
        [(node, weight)]. From the point, d(end, v) = min_a w_a + d(a, v) and
        |d_L(v) - c| + r <= d(end, v) for every node v (the same form as for a
        node, where r = 0); near = min_a d_L(a) + w_a is a path's length."""
        if end < n:
            column = self.dist[:, end]
            return column, np.zeros_like(column), column
        nodes = np.array([a for a, _ in attached])
        w = np.array([w for _, w in attached])[None]
        near = (self.dist[:, nodes] + w).min(1)
        far = (self.dist[:, nodes] - w).max(1)
        return 0.5 * (near + far), 0.5 * (near - far), near

    def active(self, a, b):
        """The landmarks that bound d(a, b) best (a, b: of_end's tuples), best
        first: a max over fewer rows is still a consistent lower bound, and cheaper."""
        return np.argsort(np.abs(a[2] - b[2]))[::-1]

    def below(self, rows, cols, end):
        """float64 lower bounds of d(v, end) for the nodes cols, from landmarks rows."""
        c, r, _ = end
        bound = (np.abs(self.dist[rows[:, None], cols] - c[rows, None])
                 + r[rows, None]).max(0, initial=0.0)
        return np.maximum(bound, 0.0)

    def screen(self, rows, *ends):
        """float32 lower bounds of the sum of d(v, end) over ends, for all nodes,
        from landmarks rows (within len(ends) x self.slack)."""
        dist = self.dist32[rows]
        buf, total = np.empty_like(dist), np.zeros(dist.shape[1], np.float32)
        for c, r, _ in ends:
            np.subtract(dist, c[rows].astype(np.float32)[:, None], out=buf)
            np.abs(buf, out=buf)
            if r[rows].any():   # r = 0 for an end on a node
                buf += r[rows].astype(np.float32)[:, None]
            total += np.maximum(buf.max(0, initial=0.0), 0.0)
        return total


class GraphSearch:
    def __init__(self, nodes, matrix, edges, weights, node_x):
        """nodes (N, Nz); matrix: the symmetric CSR of edge weights; edges (E, 2) and
        weights (E,) the same edges listed once; node_x (N, Nx) the nodes' decodings."""
        self.nodes, self.matrix, self.n = nodes, matrix, len(nodes)
        self._landmarks = self._keys = None
        self._gaps = deque(maxlen=GAPS_SEEN)   # (distance - lower bound) / lower bound
        self._node_x_np = node_x
        # Python-object views for A*'s hot loop, filled as queries reach nodes.
        self._adjacency = _Lazy(lambda u: list(zip(
            matrix.indices[matrix.indptr[u]:matrix.indptr[u + 1]].tolist(),
            matrix.data[matrix.indptr[u]:matrix.indptr[u + 1]].tolist())))
        self._rows = _Lazy(lambda v: node_x[v].tolist())

    def landmarks(self):
        """The graph's Landmarks, computed on the first served query."""
        if self._landmarks is None:
            self._landmarks = Landmarks(self.nodes, self.matrix)
        return self._landmarks

    def _first_gap(self):
        """The first bound's gap over the lower bound, relative: one that held for
        QUANTILE of this graph's recent queries, so most need one try."""
        seen = sorted(self._gaps)   # a copy: other threads may append meanwhile
        if len(seen) < GAPS_SEEN // 8:
            return FIRST_GAP
        return max(seen[int(QUANTILE * (len(seen) - 1))], 1e-6) * 1.01

    def positions(self, pairs):
        """CSR positions of the edges (i, j) and (j, i) for node pairs (K, 2): what
        `blocked` takes. Positions are sorted by (row, column), so one
        searchsorted over row * N + column finds them all."""
        m, n = self.matrix, self.n
        if self._keys is None:
            rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(m.indptr))
            self._keys = rows * n + m.indices
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        keys = np.r_[pairs[:, 0] * n + pairs[:, 1], pairs[:, 1] * n + pairs[:, 0]]
        found = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        if len(keys) and (self._keys[found] != keys).any():
            raise ValueError("blocked: a node pair is not an edge of the graph; pass rows "
                             "of the graph's edges array")
        return found

    def dijkstra(self, source, target, start_edges, into_goal, blocked=None):
        """A* with landmark bounds (scipy's Dijkstra on reduced costs) over the graph
        plus the query's edges; blocked: positions in self.matrix.data (indices or a
        boolean mask) of edges this query must not use. Returns (node path, hop
        weights, nodes settled over all tries) or None."""
        n = self.n
        if source == target:   # both ends on one node
            return [source], [], 1
        start = [(v, w) for v, w in start_edges if v < n]
        goal = [(target, 0.0)] if target < n else list(into_goal.items())
        direct = min([w for v, w in start_edges if v == target], default=np.inf)
        query = _Query(self, (source, target), start, goal,
                       _positions(blocked, len(self.matrix.data)))
        settled = 0
        for bound in query.bounds(direct, self._first_gap()):
            found, count = query.run(bound)
            settled += count
            if found is not None and sum(found[1]) < direct:
                if query.lower > 0 and blocked is None:   # detours would skew the gaps
                    self._gaps.append(sum(found[1]) / query.lower - 1)
                return found[0], found[1], settled
            if direct <= min(bound, BIG):   # no path through the graph is shorter
                return [source, target], [float(direct)], settled
        return None

    def astar(self, source, target, start_edges, into_goal, x_goal):
        """A* over the graph plus the query's edges; Dijkstra when x_goal is None.

        Dicts instead of arrays of size N, and a heuristic computed only for the
        nodes reached: a query's cost does not grow with the graph. Closed nodes
        are never reopened, so any weights (even corrupt ones) terminate.
        Returns (node path, hop weights, nodes expanded) or None.
        """
        n = self.n
        adjacency, rows = self._adjacency, self._rows
        h = {n: 0.0, n + 1: 0.0}
        x_goal = None if x_goal is None else list(map(float, x_goal))
        best, parent, closed = {source: 0.0}, {source: (-1, 0.0)}, set()
        h_source = 0.0 if x_goal is None or source >= n else dist(rows[source], x_goal)
        heap = [(h_source, 0.0, source)]
        pop, push, inf = heapq.heappop, heapq.heappush, float("inf")
        best_get, h_get = best.get, h.get
        while heap:
            _, g, u = pop(heap)
            if u in closed:
                continue
            if u == target:
                path, hops = [u], []
                while u != source:
                    u, w = parent[u]
                    path.append(u), hops.append(w)
                return path[::-1], hops[::-1], len(closed)
            closed.add(u)
            if u < n:
                neighbours = adjacency[u]
                if u in into_goal:
                    neighbours = neighbours + [(n + 1, into_goal[u])]
            else:
                neighbours = start_edges
            for v, w in neighbours:
                if v in closed:
                    continue
                cost = g + w
                if cost < best_get(v, inf):
                    best[v] = cost
                    parent[v] = (u, w)
                    hv = h_get(v)
                    if hv is None:
                        hv = h[v] = 0.0 if x_goal is None else dist(rows[v], x_goal)
                    push(heap, (cost + hv, cost, v))
        return None


class _Query:
    """One query: its ends' landmark bounds, the screen that picks candidate nodes,
    and for each bound tried a Dijkstra over the candidates' subgraph alone."""

    def __init__(self, search, ends, start, goal, blocked):
        m, n = search.matrix, search.n
        self.matrix, self.n, (self.source, self.target), self.goal = m, n, ends, goal
        self.marks = marks = search.landmarks()
        self.start_end = marks.of_end(self.source, start, n)
        self.goal_end = marks.of_end(self.target, goal, n)
        self.cols = np.array([v for v, _ in start], dtype=np.int64)
        self.start_w = np.array([w for _, w in start], dtype=float)
        self.ends = np.array([a for a, _ in goal])
        self.end_w = np.array([w for _, w in goal], dtype=float)
        self.blocked = None
        if blocked is not None:
            self.blocked = np.zeros(len(m.data), bool)
            self.blocked[blocked] = True
        # A lower bound of d(s, v) + d(v, g) for every node, screened once per query.
        self.rows = marks.active(self.start_end, self.goal_end)[:ACTIVE]
        self.key = marks.screen(self.rows, self.start_end, self.goal_end)
        # The start's potential: min over its edges keeps the reduced costs >= 0.
        if self.source < n:
            self.lower = float(marks.below(self.rows, [self.source], self.goal_end)[0])
        else:
            self.lower = float(np.min(self.start_w + marks.below(self.rows, self.cols,
                                                                 self.goal_end)))

    def bounds(self, direct, first_gap):
        """Bounds B of the distance to try in turn: the lower bound plus a gap that
        grows, then the landmark upper bound (unless edges are blocked), then none."""
        upper = float(np.min(self.start_end[2] + self.goal_end[2], initial=np.inf))
        last = min(upper, direct) if self.blocked is None else direct
        gap = first_gap * (self.lower if self.lower > 0 else upper)
        bound = self.lower + gap
        while np.isfinite(bound) and bound < min(last, upper) and gap > 0:
            yield bound * (1 + TIE)
            gap *= GROWTH
            bound = self.lower + gap
        if np.isfinite(last):
            yield last * (1 + TIE) + 1e-300
        yield np.inf

    def run(self, bound):
        """Dijkstra on reduced costs over the candidate nodes, cut at `bound`:
        ((node path, hop weights) or None, nodes settled)."""
        n, source = self.n, self.source
        inside = self.key <= bound + 2 * self.marks.slack
        cand = np.flatnonzero(inside)
        if source < n and not inside[source]:   # only on a bound below the lower bound
            return None, 0
        # Node -> row of the candidates' subgraph: the start's row (if it is not a
        # node) follows theirs, then an empty row that every other node maps to,
        # whose potential is infinite (so are the weights into it).
        local = np.full(n, len(cand) + 1, np.int32)
        local[cand] = np.arange(len(cand), dtype=np.int32)
        pot = np.concatenate([self.marks.below(self.rows, cand, self.goal_end),
                              [self.lower, np.inf]])
        graph = self._subgraph(cand, local, pot)
        root = int(local[source]) if source < n else len(cand)
        reduced, parent = dijkstra(graph, directed=True, indices=root,
                                   limit=min(max(bound - pot[root], 0.0), BIG),
                                   return_predecessors=True)
        settled = int(np.isfinite(reduced).sum())
        rows = local[self.ends]   # the graph's distance: reduced + pot(s) - pot(v)
        with np.errstate(invalid="ignore"):   # inf - inf off the candidates: NaN, not hit
            total = reduced[rows] + pot[root] - pot[rows] + self.end_w
        best = int(np.argmin(np.where(np.isnan(total), np.inf, total)))
        if not total[best] <= min(bound, BIG):
            return None, settled
        walk = _walk(parent.tolist(), int(rows[best]), root)[::-1]
        hops = np.diff(reduced[walk] - pot[walk]).tolist()
        path = np.append(cand, n)[walk].tolist()
        if self.target == n + 1:   # the last hop, into a goal that is not a node
            path, hops = path + [n + 1], hops + [float(self.goal[best][1])]
        return (path, hops), settled

    def _subgraph(self, cand, local, pot):
        """The candidates' CSR (their rows, the start's, an empty one) with reduced
        weights w - pot(u) + pot(v) >= 0, infinite into non-candidates and on
        blocked edges."""
        m = self.matrix
        begin = m.indptr[cand]
        count = m.indptr[cand + 1] - begin
        # The candidates' rows' positions, concatenated (rows are contiguous in CSR).
        row = np.repeat(np.arange(len(cand)), count)
        pos = np.arange(len(row)) + (begin - np.cumsum(count) + count)[row]
        cols, data = m.indices[pos], m.data[pos] - pot[row]
        if len(self.cols):
            cols = np.concatenate([cols, self.cols])
            data = np.concatenate([data, self.start_w - pot[-2]])
        to = local[cols]
        data += pot[to]
        if self.blocked is not None:
            data[:len(pos)][self.blocked[pos]] = np.inf
        # Rounding in the landmark distances can leave -1e-16: never negative.
        np.maximum(data, 0.0, out=data)
        indptr = np.zeros(len(cand) + 3, np.int32)
        np.cumsum(count, out=indptr[1:-2])
        indptr[-2:] = len(cols)
        # Well formed by construction: set the arrays, skip the constructor's checks
        # (scipy's dijkstra validates its input anyway).
        graph = csr_matrix((len(cand) + 2, len(cand) + 2))
        graph.data, graph.indices, graph.indptr = data, to, indptr
        return graph


def _positions(blocked, size):
    """blocked as an index array (a boolean mask over the CSR's data accepted)."""
    if blocked is None:
        return None
    blocked = np.asarray(blocked)
    if blocked.dtype == bool:
        if blocked.shape != (size,):
            raise ValueError("blocked: a boolean mask must have one entry per CSR position "
                             "(%d), not shape %s" % (size, blocked.shape))
        return np.flatnonzero(blocked)
    blocked = blocked.astype(np.int64).ravel()
    if len(blocked) and not 0 <= blocked.min() <= blocked.max() < size:
        raise ValueError("blocked: positions must lie in the graph's CSR data (0 to %d); "
                         "GraphSearch.positions turns node pairs into positions" % (size - 1))
    return blocked


def _walk(parent, node, root):
    """Nodes from `node` back to `root` along a predecessor row."""
    path = [int(node)]
    while path[-1] != root:
        path.append(int(parent[path[-1]]))
    return path


class _Lazy(dict):
    """A dict that computes a missing key once (then a plain C-level lookup)."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def __missing__(self, key):
        value = self[key] = self.make(key)
        return value
