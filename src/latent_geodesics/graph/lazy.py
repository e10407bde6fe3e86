"""Graph paths that keep clear of the robot's world, checked lazily (Lazy PRM:
Bohlin & Kavraki, ICRA 2000): search the graph as the scene leaves it, check only the
found path's edges, drop those that collide and search again. Edges found clear or
colliding are remembered by the world until its scene changes, so a repeated query
checks nothing; a scene update starts over (the next request sees it).

The world (serving/world.py's PathWorld) gives: search(margin), the graph's search
without edges at nodes nearer than margin to an object and without edges found
colliding, weighted by its metric; segments_clear(za, zb, margin); and the sets
colliding_edges / clear_edges of graph edge indices.
"""
import numpy as np

from latent_geodesics.errors import GraphError

MAX_ROUNDS = 100   # searches per query before giving up (each drops at least one edge)


def edge_index(graph):
    """{(u, v): edge index} over the graph's edges, u < v, built once per graph."""
    index = getattr(graph, "_edge_index", None)
    if index is None or len(index) != len(graph.edges):
        lo = np.minimum(graph.edges[:, 0], graph.edges[:, 1]).tolist()
        hi = np.maximum(graph.edges[:, 0], graph.edges[:, 1]).tolist()
        index = graph._edge_index = dict(zip(zip(lo, hi), range(len(lo))))
    return index


def lazy_node_path(graph, zs, zg, method, world, margin):
    """(points, hops, PathStats) of the shortest path whose edges all keep margin
    from the world's objects; GraphError when none does."""
    n, index = len(graph.nodes), edge_index(graph)
    skipped = set()    # this query's own edges (start/goal to a node) found colliding
    for rounds in range(1, MAX_ROUNDS + 1):
        try:
            points, hops, stats = graph._node_path(zs, zg, method, world.search(margin),
                                                   frozenset(skipped))
        except GraphError:
            raise GraphError(_no_free_path(world, rounds)) from None
        ids = stats.query_path
        pairs = list(zip(ids[:-1], ids[1:]))
        edges = [index.get((min(a, b), max(a, b))) if max(a, b) < n else None
                 for a, b in pairs]
        unknown = [e for e, edge in enumerate(edges)
                   if edge is None or edge not in world.clear_edges]
        clear = world.segments_clear(points[:-1][unknown], points[1:][unknown], margin) \
            if unknown else np.ones(0, bool)
        for e, ok in zip(unknown, clear):
            _remember(world, skipped, pairs[e], edges[e], ok, n)
        if clear.all():
            stats.lazy_rounds = rounds
            return points, hops, stats
    raise GraphError(_no_free_path(world, MAX_ROUNDS))


def _remember(world, skipped, pair, edge, ok, n):
    if edge is None:   # a query edge: only this query has it
        if not ok:
            skipped.add((min(pair), max(pair)) if max(pair) == n + 1 and min(pair) == n
                        else (pair[0], pair[1]) if pair[0] >= n else (pair[1], pair[0]))
        return
    (world.clear_edges if ok else world.colliding_edges).add(edge)


def _no_free_path(world, rounds):
    return ("no collision-free path along the demonstrations: every way the graph offers "
            "passes within collision_padding of an object (%d edges found colliding, %d "
            "searches); move or remove the object, demonstrate a way around it, or lower "
            "collision_padding" % (len(world.colliding_edges), rounds))
