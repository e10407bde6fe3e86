"""The importance-weighted autoencoder (IWAE) and its model directory.

A model directory holds:
    model.yaml    dimensions, architecture, normalisation, joint names,
                  training data hash, training settings, file checksums
    weights.pt    the state dict (loaded with weights_only=True)
    latents.npy   posterior means of the training data (the graph's nodes)
"""
import hashlib
import math
import os

import numpy as np
import torch
import yaml
from torch import nn

from latent_geodesics.errors import ConfigError, ModelError, is_number
from latent_geodesics.files import atomic_write

FORMAT_VERSION = 1
ACTIVATIONS = {"tanh": nn.Tanh, "softplus": nn.Softplus, "elu": nn.ELU}
MIN_LOGVAR = -12.0
MAX_LOGVAR = 6.0


def resolve_device(device="auto"):
    """'auto' -> CUDA when present, else CPU; 'cuda' without CUDA is an error."""
    device = str(device or "auto").lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("device '%s' requested but CUDA is not available" % device)
    if not (device == "cpu" or device.startswith("cuda")):
        raise ModelError("device must be auto, cpu or cuda, not '%s'" % device)
    return torch.device(device)


def mlp(sizes, activation):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def gaussian_log_prob(x, mean, logvar):
    """log N(x; mean, diag exp(logvar)), summed over the last axis."""
    return -0.5 * (((x - mean) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


class IWAE(nn.Module):
    """Gaussian encoder q(z|x), Gaussian decoder p(x|z) with learned variance.

    Internally x is normalised with the stored mean/std; `decode` and
    `encode` speak the original units (radians).

    noise_floor: the decoder's standard deviation is at least this fraction of
    the widest joint's spread, in every joint. Without it, a joint that barely
    moves (recording noise only) is, once normalised, worth as much to the
    likelihood as the joint that carries the task, and a small latent space may
    spend itself on that noise.
    """

    def __init__(self, x_dim, z_dim, hidden=(128, 128), activation="tanh",
                 x_mean=None, x_std=None, joint_names=None, noise_floor=0.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError("activation must be one of %s" % sorted(ACTIVATIONS))
        self.x_dim, self.z_dim = int(x_dim), int(z_dim)
        self.hidden, self.activation = tuple(int(h) for h in hidden), activation
        self.joint_names = list(joint_names or ["joint_%d" % i for i in range(x_dim)])
        self.encoder = mlp([x_dim, *self.hidden, 2 * z_dim], activation)
        self.decoder_net = mlp([z_dim, *self.hidden[::-1], 2 * x_dim], activation)
        self.register_buffer("x_mean", torch.zeros(x_dim) if x_mean is None
                             else torch.as_tensor(x_mean, dtype=torch.float32))
        self.register_buffer("x_std", torch.ones(x_dim) if x_std is None
                             else torch.as_tensor(x_std, dtype=torch.float32))
        self.noise_floor = float(noise_floor)
        self.latents = None  # posterior means of the training data, set by training/loading
        self.data = None     # the recorded poses it was trained on, where known

    @property
    def device(self):
        return self.x_mean.device

    # --- distributions in normalised units -------------------------------
    def posterior(self, x_norm):
        mean, logvar = self.encoder(x_norm).chunk(2, dim=-1)
        return mean, logvar.clamp(MIN_LOGVAR, MAX_LOGVAR)

    def likelihood(self, z):
        mean, logvar = self.decoder_net(z).chunk(2, dim=-1)
        return mean, torch.maximum(logvar, self.min_logvar()).clamp(max=MAX_LOGVAR)

    def min_logvar(self):
        """The noise floor as a log-variance per joint, in normalised units."""
        floor = (self.noise_floor * self.x_std.max() / self.x_std).clamp(min=1e-30)
        return (2 * floor.log()).clamp(min=MIN_LOGVAR)

    def normalise(self, x):
        return (x - self.x_mean) / self.x_std

    def iwae_bound(self, x_norm, samples=10, beta=1.0, generator=None, eps=None):
        """Per-datum IWAE bound L_K (normalised units), shape (B,).

        beta < 1 weighs the prior/posterior terms down (KL warm-up in training);
        beta = 1 is the bound itself. eps: the (K, B, Nz) standard normal noise to
        use, else drawn (from `generator` if given)."""
        mu, logvar = self.posterior(x_norm)
        if eps is None:
            eps = torch.randn((samples,) + mu.shape, device=mu.device, dtype=mu.dtype,
                              generator=generator)
        z = mu + eps * (0.5 * logvar).exp()                       # (K, B, Nz)
        x_mean, x_logvar = self.likelihood(z)
        log_px_z = gaussian_log_prob(x_norm, x_mean, x_logvar)
        log_pz = gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z))
        log_qz_x = gaussian_log_prob(z, mu, logvar)
        log_w = log_px_z + beta * (log_pz - log_qz_x)             # (K, B)
        return torch.logsumexp(log_w, dim=0) - math.log(samples)

    # --- the public callables, original units ----------------------------
    def decode(self, z):
        """Decoder mean f(z): (B, Nz) -> (B, Nx) in the data's units."""
        return self.decoder_net(z)[..., :self.x_dim] * self.x_std + self.x_mean

    def decode_std(self, z):
        """Decoder standard deviation (data uncertainty), (B, Nx), data units."""
        return (0.5 * self.likelihood(z)[1]).exp() * self.x_std

    def encode(self, x):
        """Posterior means mu(x): (B, Nx) data units -> (B, Nz)."""
        return self.posterior(self.normalise(x))[0]

    def forward(self, z):
        return self.decode(z)

    def config(self):
        return {"x_dim": self.x_dim, "z_dim": self.z_dim, "hidden": list(self.hidden),
                "activation": self.activation, "joint_names": self.joint_names,
                "x_mean": self.x_mean.tolist(), "x_std": self.x_std.tolist(),
                "noise_floor": self.noise_floor}


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(model: "IWAE", directory: str, extra=None) -> None:
    """Write a complete model directory; files appear atomically (tmp + rename)."""
    os.makedirs(directory, exist_ok=True)
    if model.latents is None:
        raise ModelError("model has no latent means of its training data; encode them first")
    files = {"weights.pt": lambda p: torch.save(
                 {k: v.detach().cpu() for k, v in model.state_dict().items()}, p),
             "latents.npy": lambda p: np.save(p, np.asarray(model.latents, dtype=np.float32))}
    if getattr(model, "data", None) is not None:   # the recorded poses, for fidelity stats
        files["data.npy"] = lambda p: np.save(p, np.asarray(model.data, dtype=np.float64))
    checksums = {}
    for name, write in files.items():
        checksums[name] = sha256_file(atomic_write(os.path.join(directory, name), write))
    meta = {"format_version": FORMAT_VERSION, **model.config(), "files": checksums,
            **(extra or {})}
    atomic_write(os.path.join(directory, "model.yaml"),
                 lambda f: yaml.safe_dump(meta, f, sort_keys=False), "w")


# The largest metadata a model can have (x_mean and x_std of MAX_X_DIM joints, the
# training report) is about 5 MB; a larger file would block a reload for minutes.
MAX_MODEL_YAML_BYTES = 8 * 1024 * 1024


def read_model_yaml(directory):
    if not os.path.isdir(directory):
        raise ModelError("model directory '%s' does not exist" % directory)
    path = os.path.join(directory, "model.yaml")
    if not os.path.isfile(path):
        raise ModelError("'%s' is not a model directory: model.yaml is missing" % directory)
    if os.path.getsize(path) > MAX_MODEL_YAML_BYTES:
        raise ModelError("model.yaml in '%s' is %d bytes, more than a model's metadata can be "
                         "(%d): it is not a model this package wrote"
                         % (directory, os.path.getsize(path), MAX_MODEL_YAML_BYTES))
    try:
        with open(path) as f:   # libyaml's parser where present: ten times faster
            meta = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise ModelError("model.yaml in '%s' is not valid YAML: %s" % (directory, e)) from None
    required = ("format_version", "x_dim", "z_dim", "hidden", "activation",
                "joint_names", "x_mean", "x_std", "files")
    missing = [k for k in required if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise ModelError("model.yaml in '%s' lacks %s" % (directory, ", ".join(missing)))
    if meta["format_version"] != FORMAT_VERSION:
        raise ModelError("model.yaml format_version %r, this code reads %d"
                         % (meta["format_version"], FORMAT_VERSION))
    problem = meta_problem(meta)
    if problem:
        raise ModelError("model.yaml in '%s' is invalid: %s" % (directory, problem))
    return meta


MAX_X_DIM, MAX_Z_DIM, MAX_WIDTH, MAX_LAYERS = 100000, 1024, 8192, 16
MAX_PARAMETERS = 50_000_000   # checked before anything is allocated


def _is_int(value, low, high):
    return is_number(value) and isinstance(value, int) and low <= value <= high


def _numbers(values, n):
    return isinstance(values, list) and len(values) == n and all(is_number(v) for v in values)


def meta_problem(meta):
    """What is wrong with a model.yaml's contents (types, ranges, counts), or None."""
    if not _is_int(meta["x_dim"], 1, MAX_X_DIM):
        return "x_dim must be an integer 1..%d, not %r" % (MAX_X_DIM, meta["x_dim"])
    if not _is_int(meta["z_dim"], 1, MAX_Z_DIM):
        return "z_dim must be an integer 1..%d, not %r" % (MAX_Z_DIM, meta["z_dim"])
    hidden = meta["hidden"]
    if not (isinstance(hidden, list) and 1 <= len(hidden) <= MAX_LAYERS
            and all(_is_int(h, 1, MAX_WIDTH) for h in hidden)):
        return "hidden must be a list of 1..%d layer widths 1..%d, not %r" % (
            MAX_LAYERS, MAX_WIDTH, hidden)
    if meta["activation"] not in ACTIVATIONS:
        return "activation must be one of %s (twice differentiable), not %r" % (
            sorted(ACTIVATIONS), meta["activation"])
    sizes = [meta["x_dim"], *hidden, 2 * meta["z_dim"]]
    count = 2 * sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    if count > MAX_PARAMETERS:
        return "the architecture has about %d parameters, more than %d" % (count,
                                                                           MAX_PARAMETERS)
    names = meta["joint_names"]
    if not (isinstance(names, list) and all(isinstance(n, str) and n for n in names)):
        return "joint_names must be a list of names, not %r" % (names,)
    if len(names) != meta["x_dim"] or len(set(names)) != len(names):
        return "inconsistent: x_dim %d but %d joint names (%d distinct)" % (
            meta["x_dim"], len(names), len(set(names)))
    for key in ("x_mean", "x_std"):
        if not _numbers(meta[key], meta["x_dim"]):
            return "%s must be %d finite numbers" % (key, meta["x_dim"])
    if min(meta["x_std"]) <= 0:
        return "x_std must be positive"
    floor = meta.get("noise_floor", 0.0)   # absent in models written before it existed
    if not (is_number(floor) and 0 <= floor < 1):
        return "noise_floor must be a number in [0, 1), not %r" % (floor,)
    files = meta["files"]
    if not isinstance(files, dict) or not all(
            isinstance(files.get(f), str) and len(files[f]) == 64
            for f in ("weights.pt", "latents.npy")):
        return "files must hold the sha256 of weights.pt and latents.npy"
    return None


def _checked_file(directory, meta, name):
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        raise ModelError("model directory '%s' lacks %s" % (directory, name))
    expected = meta["files"][name]
    if sha256_file(path) != expected:
        raise ModelError("%s in '%s' is truncated or corrupt (checksum mismatch)"
                         % (name, directory))
    return path


def _recorded_data(directory, meta):
    """The training poses (N, Nx) where the directory holds them (models written
    before data.npy existed do not: None)."""
    if "data.npy" not in meta["files"]:
        return None
    try:
        data = np.load(_checked_file(directory, meta, "data.npy"), allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ModelError("data.npy in '%s' is unreadable: %s" % (directory, e)) from None
    if data.ndim != 2 or data.shape[1] != meta["x_dim"] or not np.isfinite(data).all():
        raise ModelError("data.npy in '%s' has shape %s, expected finite (N, %d)"
                         % (directory, data.shape, meta["x_dim"]))
    return data


def load_model(directory: str, device="auto") -> "IWAE":
    """Load a model directory onto `device`; ModelError names any problem."""
    meta = read_model_yaml(directory)
    device = resolve_device(device)
    model = IWAE(meta["x_dim"], meta["z_dim"], meta["hidden"], meta["activation"],
                 meta["x_mean"], meta["x_std"], meta["joint_names"],
                 meta.get("noise_floor", 0.0))
    weights = _checked_file(directory, meta, "weights.pt")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as e:  # torch raises many types for a bad file
        raise ModelError("weights.pt in '%s' does not fit model.yaml: %s"
                         % (directory, str(e).splitlines()[0])) from None
    try:
        latents = np.load(_checked_file(directory, meta, "latents.npy"), allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ModelError("latents.npy in '%s' is unreadable: %s" % (directory, e)) from None
    if latents.ndim != 2 or latents.shape[1] != meta["z_dim"] or len(latents) == 0:
        raise ModelError("latents.npy in '%s' has shape %s, expected (N, %d)"
                         % (directory, latents.shape, meta["z_dim"]))
    if not np.isfinite(latents).all() or len(np.unique(latents, axis=0)) < 2:
        raise ModelError("latents.npy in '%s' holds non-finite or fewer than 2 distinct "
                         "points: no graph can be built on it" % directory)
    model.latents = latents
    model.data = _recorded_data(directory, meta)
    model.meta = meta
    model.directory = os.path.abspath(directory)
    return model.to(device).eval().requires_grad_(False)
