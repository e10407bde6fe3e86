"""An independent check of motions against a scene, for the bench and the tests: no
sphere cover and no RobotBody. Points are sampled on each link's URDF geometry
(trimesh's primitives' surfaces, an interior grid, a mesh's surface), posed by
pytorch_kinematics along the joint polyline so finely that no point moves more than
`spacing` between samples (by a per-joint bound computed here from the posed frames),
and tested against the scene's exact primitives."""
import logging
from dataclasses import dataclass

import numpy as np
import torch

from latent_geodesics.world.body import origin_matrix, resolve_mesh
from latent_geodesics.world.collision import Primitives
from latent_geodesics.world.urdf import URDFError, parse_urdf


@dataclass(frozen=True)
class DenseCheck:
    """The smallest clearance of any sampled body point (m; negative: inside an
    object), where (link, object, row index and fraction to the next row), whether any
    point is inside an object, in how many path samples, and how much was checked."""
    clearance: float
    collides: bool
    link: str
    object: str
    index: int
    fraction: float
    colliding_samples: int
    samples: int
    points: int


def primitive_points(geometry, spacing, package_dirs=None):
    """Points (P, 3) on the surface and, for primitives, on an interior grid of one
    URDF geometry, in its own frame."""
    import trimesh
    kind = type(geometry).__name__
    if kind == "Box":
        size = np.asarray(geometry.size, float)
        mesh = trimesh.primitives.Box(extents=size)
        inside = lambda p: np.all(np.abs(p) <= size / 2, axis=1)   # noqa: E731
    elif kind == "Cylinder":
        r, h = float(geometry.radius), float(geometry.length)
        mesh = trimesh.primitives.Cylinder(radius=r, height=h, sections=128)
        inside = lambda p: (np.hypot(p[:, 0], p[:, 1]) <= r) & (np.abs(p[:, 2]) <= h / 2)  # noqa: E731
    elif kind == "Sphere":
        r = float(geometry.radius)
        mesh = trimesh.primitives.Sphere(radius=r, subdivisions=4)
        inside = lambda p: np.linalg.norm(p, axis=1) <= r   # noqa: E731
    elif kind == "Mesh":
        path = resolve_mesh(geometry.filename, package_dirs)
        if path is None:
            raise URDFError("a link's mesh does not resolve; give package_dirs")
        mesh = trimesh.load(path, force="mesh")
        mesh.apply_scale(np.asarray(geometry.scale if geometry.scale is not None else 1.0))
        inside = None   # a mesh's inside needs ray tests: its surface stands for it
    else:
        return np.zeros((0, 3))
    count = int(np.ceil(4 * mesh.area / spacing ** 2)) + 8
    log = logging.getLogger("trimesh")
    level = log.level
    log.setLevel(logging.ERROR)   # it reports how many candidates the spacing rejected
    try:
        surface, _ = trimesh.sample.sample_surface_even(mesh, count, radius=spacing / 2,
                                                        seed=0)
    finally:
        log.setLevel(level)
    points = [np.asarray(mesh.vertices), np.asarray(surface)]
    if inside is not None:
        low, high = mesh.bounds
        axes = [np.arange(low[i], high[i] + spacing, spacing) for i in range(3)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        points.append(grid[inside(grid)])
    return np.vstack(points)


def link_points(robot, spacing, package_dirs=None):
    """{link: points (P, 3) in the link frame} on each link's collision geometry,
    else its visual geometry."""
    out = {}
    for link in robot.links:
        elements = list(link.collisions or []) or list(link.visuals or [])
        chunks = []
        for element in elements:
            if element.geometry is None:
                continue
            local = primitive_points(element.geometry, spacing, package_dirs)
            pose = origin_matrix(element.origin)
            chunks.append(local @ pose[:3, :3].T + pose[:3, 3])
        if chunks:
            out[link.name] = np.vstack(chunks)
    return out


def joint_speeds(chain, points, columns, robot):
    """Per driven joint (m per rad or per m): the largest distance, over every
    configuration, from the joint's frame origin to a point below it. Frame origins of
    consecutive links keep their distance whatever the joints (measured here at the
    chain's zero pose), so a chain of them bounds it; prismatic joints add travel."""
    zero = chain.forward_kinematics_tensor(torch.zeros(1, chain.n_joints,
                                                       dtype=chain.dtype))[:, 0]
    origins = zero[:, :3, 3].numpy()
    travel = {j.name: max(abs(j.limit.lower or 0), abs(j.limit.upper or 0))
              for j in robot.joints if j.type == "prismatic" and j.limit is not None}
    frame_joint = {}
    for name in chain.get_frame_names(exclude_fixed=False):
        frame = chain.find_frame(name)
        frame_joint[chain.frame_to_idx[name]] = frame.joint.name if frame.joint else None
    speeds = np.zeros(len(columns))
    for link, local in points.items():
        path = [int(i) for i in chain.parents_indices[chain.frame_to_idx[link]]]
        far = float(np.max(np.linalg.norm(local, axis=1)))
        for at, frame in enumerate(path):
            joint = frame_joint[frame]
            if joint not in columns:
                continue
            chain_length = sum(np.linalg.norm(origins[b] - origins[a]) + travel.get(
                frame_joint[b], 0.0) for a, b in zip(path[at:], path[at + 1:]))
            speed = 1.0 if joint in travel else chain_length + far
            speeds[columns.index(joint)] = max(speeds[columns.index(joint)], speed)
    return speeds


def path_samples(positions, speeds, spacing):
    """Configurations along the polyline, no point moving more than `spacing` between
    consecutive ones; with each sample's row and fraction to the next row."""
    positions = np.asarray(positions, float).reshape(-1, len(speeds))
    rows, fractions, configurations = [], [], []
    for k in range(len(positions) - 1):
        delta = positions[k + 1] - positions[k]
        count = max(1, int(np.ceil(np.abs(delta) @ speeds / spacing)))
        s = np.arange(count) / count
        configurations.append(positions[k] + s[:, None] * delta)
        rows.append(np.full(count, k))
        fractions.append(s)
    configurations.append(positions[-1:])
    rows.append([len(positions) - 1])
    fractions.append([0.0])
    return np.vstack(configurations), np.concatenate(rows), np.concatenate(fractions)


def dense_collisions(urdf_xml, joint_names, scene, positions, spacing=0.001,
                     point_spacing=0.01, package_dirs=None, chunk=16):
    """DenseCheck of the joint polyline through positions (T, J) (columns in
    joint_names order; other movable joints held at 0 within limits) against the
    scene, with points every `point_spacing` on the URDF geometry and path samples
    so that no point moves more than `spacing` between them."""
    from latent_geodesics.world.body import build_chain, check_joints, held_position
    robot = parse_urdf(urdf_xml)
    movable = check_joints(robot, joint_names)
    chain = build_chain(urdf_xml).to(dtype=torch.float64)
    columns = list(joint_names)
    points = link_points(robot, point_spacing, package_dirs)
    links = [name for name in points if name in chain.frame_to_idx]
    samples, rows, fractions = path_samples(positions, joint_speeds(chain, points, columns,
                                                                    robot), spacing)
    order = chain.get_joint_parameter_names()
    full = np.array([[held_position(movable[n]) if n not in columns else 0.0
                      for n in order]] * len(samples))
    driven = [order.index(n) for n in columns]
    full[:, driven] = samples
    primitives = Primitives(scene, torch.float64)
    local = torch.as_tensor(np.vstack([points[n] for n in links]))
    owner = np.concatenate([np.full(len(points[n]), i) for i, n in enumerate(links)])
    frames = torch.as_tensor(np.repeat([chain.frame_to_idx[n] for n in links],
                                       [len(points[n]) for n in links]))
    best, inside = (np.inf, 0, 0, 0), 0
    with torch.no_grad():
        for start in range(0, len(full), chunk):
            pose = chain.forward_kinematics_tensor(torch.as_tensor(full[start:start + chunk]))
            pose = pose[frames]   # (P, B, 4, 4)
            world = torch.einsum("pbij,pj->bpi", pose[..., :3, :3], local) \
                + pose[..., :3, 3].transpose(0, 1)
            distance = primitives.distances(world.reshape(-1, 3)).reshape(
                len(world), len(local), -1).flatten(1)
            if distance.shape[1] == 0:
                break
            smallest, where = distance.min(dim=1)
            inside += int((smallest < 0).sum())
            sample = int(torch.argmin(smallest))
            if float(smallest[sample]) < best[0]:
                best = (float(smallest[sample]), start + sample, *divmod(int(where[sample]),
                                                                          len(scene.objects)))
    value, sample, point, obj = best
    named = np.isfinite(value)
    return DenseCheck(value, inside > 0, links[owner[point]] if named else "",
                      primitives.object_ids[obj] if named else "", int(rows[sample]),
                      float(fractions[sample]), inside, len(samples), len(local))
