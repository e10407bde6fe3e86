"""The robot's body: each link's URDF geometry covered by spheres (world/cover.py),
posed by pytorch_kinematics' batched, differentiable forward kinematics, and a
constant per-joint bound on how fast any point of the body can move."""
import os

import numpy as np
import torch

from latent_geodesics.world import cover
from latent_geodesics.world.urdf import URDFError, parse_urdf


def shown(name, limit=64):
    """A name for an error message: quoted, control characters escaped, cut short."""
    text = repr(str(name))
    return text if len(text) <= limit else text[:limit - 4] + "...'"


def origin_matrix(origin):
    """The 4x4 of a URDF <origin> (xyz, rpy: fixed axes x, y, z, as URDF defines)."""
    from scipy.spatial.transform import Rotation
    pose = np.eye(4)
    if origin is not None:
        pose[:3, :3] = Rotation.from_euler("xyz", origin.rpy or [0, 0, 0]).as_matrix()
        pose[:3, 3] = origin.xyz or [0, 0, 0]
    return pose


def resolve_mesh(filename, package_dirs):
    """A local path for a URDF mesh filename (package://pkg/..., file://..., or an
    absolute path), or None where it does not resolve to an existing file."""
    filename = str(filename or "")
    if filename.startswith("package://"):
        package, _, rest = filename[len("package://"):].partition("/")
        base = (package_dirs or {}).get(package)
        path = os.path.join(base, rest) if base else None
    elif filename.startswith("file://"):
        path = filename[len("file://"):]
    else:
        path = filename if os.path.isabs(filename) else None
    return path if path and os.path.isfile(path) else None


def geometry_cover(geometry, resolution, package_dirs):
    """Spheres (M, 4) covering one URDF geometry in its own frame; None for a mesh
    whose file does not resolve or load."""
    kind = type(geometry).__name__
    if kind == "Box":
        return cover.box_cover(geometry.size, resolution)
    if kind == "Cylinder":
        return cover.cylinder_cover(geometry.radius, geometry.length, resolution)
    if kind == "Sphere":
        return cover.sphere_cover(geometry.radius)
    if kind == "Mesh":
        path = resolve_mesh(geometry.filename, package_dirs)
        if path is None:
            return None
        import trimesh
        try:
            mesh = trimesh.load(path, force="mesh")
            scale = np.asarray(geometry.scale if geometry.scale is not None else [1, 1, 1])
            return cover.mesh_cover(np.asarray(mesh.vertices) * scale, mesh.faces, resolution)
        except Exception:   # any unreadable format or empty mesh: the caller says what to do
            return None
    return np.zeros((0, 4))


def link_cover(link, resolution, package_dirs):
    """Spheres (M, 4) in the link frame covering its <collision> geometry, else its
    <visual> geometry (MoveIt's rule)."""
    elements = list(link.collisions or []) or list(link.visuals or [])
    covers = []
    for element in elements:
        if element.geometry is None:
            continue
        spheres = geometry_cover(element.geometry, resolution, package_dirs)
        if spheres is None:
            raise URDFError("link %s has a mesh that cannot be read (its file does not "
                            "resolve or load); give package_dirs {package: directory} "
                            "for its package:// path, or a sphere file covering this "
                            "link" % shown(link.name))
        covers.append(cover.transform_cover(spheres, origin_matrix(element.origin)))
    return np.vstack(covers) if covers else np.zeros((0, 4))


def check_joints(robot, joint_names):
    """The URDF's movable joints by name; URDFError for names that are not one."""
    movable = {j.name: j for j in robot.joints if j.type != "fixed"}
    if any(j.type in ("floating", "planar") for j in movable.values()):
        raise URDFError("the URDF has a floating or planar joint, which the collision "
                        "model does not support; give a URDF of the arm alone")
    names = list(joint_names)
    if len(set(names)) != len(names):
        raise URDFError("joint_names repeats a joint; give each of the model's joints once")
    for name in names:
        if name not in movable:
            raise URDFError("joint %s is not a movable joint of the URDF on "
                            "robot_description; give the model's joint names as the URDF "
                            "names them" % shown(name))
    return movable


def held_position(joint):
    """0 within the joint's limits: where a joint the model does not drive is held."""
    limit = joint.limit
    if joint.type == "continuous" or limit is None:
        return 0.0
    low = limit.lower if limit.lower is not None else 0.0
    high = limit.upper if limit.upper is not None else 0.0
    return float(min(max(0.0, low), high))


def build_chain(urdf_xml):
    """pytorch_kinematics' chain of a URDF that parse_urdf has already checked."""
    import pytorch_kinematics as pk
    text = urdf_xml.decode("utf-8") if isinstance(urdf_xml, bytes) else urdf_xml
    try:
        return pk.build_chain_from_urdf(text)
    except Exception as e:   # its messages may quote the document: only the type
        raise URDFError("pytorch_kinematics cannot build the robot's chain from "
                        "robot_description (%s); give a URDF with one root link"
                        % type(e).__name__) from None


def perpendicular(vector, axis):
    """|component of vector perpendicular to axis| (axis None: the whole length)."""
    vector = np.asarray(vector, float)
    if axis is None:
        return float(np.linalg.norm(vector))
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return float(np.linalg.norm(vector - np.dot(vector, axis) * axis))


def reach(robot, link, covers, axis=None):
    """An upper bound, over every configuration, on the distance (perpendicular to
    `axis`, which is fixed in this link's frame) from the link frame's origin to any
    point of a sphere on this link or a link below it. Joint rotations keep lengths,
    so a chain of fixed joint origins adds up by the triangle inequality; a
    prismatic joint adds its largest travel."""
    own = covers.get(link, np.zeros((0, 4)))
    best = max([perpendicular(s[:3], axis) + s[3] for s in own], default=0.0)
    for joint in robot.joints:
        if joint.parent != link:
            continue
        offset = perpendicular(joint.origin.xyz if joint.origin is not None else [0, 0, 0],
                               axis)
        travel = 0.0
        if joint.type == "prismatic":
            limit = joint.limit
            travel = max(abs(limit.lower or 0.0), abs(limit.upper or 0.0)) if limit \
                else np.inf
        below = reach(robot, joint.child, covers)
        if below > 0 or np.isinf(travel):
            best = max(best, offset + travel + below)
    return best


def lever_arm(robot, joint, covers):
    """Per unit of the joint: how far any sphere point below it can move at most."""
    if joint.type == "prismatic":
        return 1.0 if reach(robot, joint.child, covers) > 0 else 0.0
    return reach(robot, joint.child, covers, axis=joint.axis or [1, 0, 0])


class RobotBody:
    """Links covered by spheres, posed by batched forward kinematics.

    joint_names: the columns of q; link_names: the links that have spheres;
    sphere_links (S,): each sphere's index into link_names; radii (S,);
    fixed_joints: movable URDF joints not in joint_names, held at 0 within limits.
    """

    def __init__(self, chain, joint_names, held, link_names, sphere_links, centres, radii,
                 lever_arms, root_frame):
        self.chain = chain
        self.joint_names = list(joint_names)
        self.fixed_joints = list(held)
        self.link_names = list(link_names)
        self.sphere_links = np.asarray(sphere_links, dtype=np.int64)
        self.root_frame = root_frame
        self.dtype, self.device = chain.dtype, chain.device
        self.radii = torch.as_tensor(radii, dtype=self.dtype, device=self.device)
        self._centres = torch.as_tensor(centres, dtype=self.dtype, device=self.device)
        self._lever_arms = np.asarray(lever_arms, float)
        self._lever_arms.setflags(write=False)
        order = chain.get_joint_parameter_names()
        position = {n: i for i, n in enumerate(self.joint_names)}
        position.update({n: len(self.joint_names) + i for i, n in enumerate(held)})
        self._order = torch.tensor([position[n] for n in order], dtype=torch.long)
        self._held = torch.tensor([held[n] for n in held], dtype=self.dtype,
                                  device=self.device).reshape(1, -1)
        frames = chain.get_frame_indices(*self.link_names)
        self._frames = frames[torch.as_tensor(self.sphere_links)]

    @classmethod
    def from_urdf(cls, urdf_xml, joint_names, spheres=None, package_dirs=None,
                  resolution=0.01, device="cpu", dtype=torch.float32):
        """The body of a robot_description. spheres: {link: [[x, y, z, r], ...]} in the
        link frame (a cuRobo/MoveIt-style sphere file) replacing that link's URDF
        geometry; package_dirs: {package: directory} resolving package:// meshes."""
        if not (np.isfinite(resolution) and resolution > 0):
            raise ValueError("resolution must be a positive number of metres")
        robot = parse_urdf(urdf_xml)
        movable = check_joints(robot, joint_names)
        chain = build_chain(urdf_xml).to(dtype=dtype, device=device)
        covers = cls._covers(robot, spheres or {}, package_dirs, resolution)
        link_names = [name for name in chain.get_link_names() if len(covers.get(name, ()))]
        sphere_links = np.concatenate([np.full(len(covers[n]), i)
                                       for i, n in enumerate(link_names)] or [[]])
        stacked = np.vstack([covers[n] for n in link_names] or [np.zeros((0, 4))])
        held = {n: held_position(j) for n, j in movable.items() if n not in joint_names}
        held = {n: held[n] for n in chain.get_joint_parameter_names() if n in held}
        arms = [lever_arm(robot, movable[n], covers) for n in joint_names]
        return cls(chain, joint_names, held, link_names, sphere_links, stacked[:, :3],
                   stacked[:, 3], arms, robot.get_root())

    @staticmethod
    def _covers(robot, spheres, package_dirs, resolution):
        links = {link.name: link for link in robot.links}
        covers = {}
        for name, given in spheres.items():
            if name not in links:
                raise URDFError("the sphere file names link %s, which the URDF does not "
                                "have; give spheres for the URDF's links" % shown(name))
            given = np.asarray(given, float).reshape(-1, 4)
            if not np.all(np.isfinite(given)) or np.any(given[:, 3] < 0):
                raise ValueError("the sphere file's spheres for link %s are not finite "
                                 "[x, y, z, r] with r >= 0" % shown(name))
            covers[name] = given
        for name, link in links.items():
            if name not in covers:
                covers[name] = link_cover(link, resolution, package_dirs)
        return covers

    def _positions(self, q):
        q = torch.as_tensor(q, dtype=self.dtype, device=self.device)
        if q.ndim == 1:
            q = q.unsqueeze(0)
        if q.ndim != 2 or q.shape[1] != len(self.joint_names):
            raise ValueError("configurations must be (B, %d) for the joints %s"
                             % (len(self.joint_names), ", ".join(self.joint_names)))
        full = torch.cat([q, self._held.expand(q.shape[0], -1)], dim=1)
        return full[:, self._order]

    def sphere_centres(self, q):
        """(B, S, 3) sphere centres in the root frame; differentiable w.r.t. q."""
        transforms = self.chain.forward_kinematics_tensor(self._positions(q))[self._frames]
        centres = torch.einsum("sbij,sj->bsi", transforms[..., :3, :3], self._centres)
        return centres + transforms[..., :3, 3].transpose(0, 1)

    def lever_arms(self):
        """(J,) per joint: an upper bound (m per rad, or per m for a prismatic joint)
        on how far any point of any sphere moves when that joint alone moves, valid in
        every configuration."""
        return self._lever_arms

    def motion_bound(self, dq):
        """Σ_j |dq_j|·lever_arm_j over the last axis: how far any body point can move
        along the straight joint-space segment q → q + dq."""
        return np.abs(np.asarray(dq, float)) @ self._lever_arms
