"""What training measured, typed: the report train_iwae returns and model.yaml keeps.

model.yaml holds it as a plain mapping (`as_dict`, the keys of every model written so
far); `TrainingReport.of(model)` reads it back. A model written before a figure
existed, or a hand-edited file, reads that figure as None: every reader says what it
does without it.
"""
from dataclasses import asdict, dataclass, fields

from latent_geodesics.errors import is_number


@dataclass(frozen=True)
class Reconstruction:
    """A model on a set of poses: the IWAE bound (nats per datum, normalised units) and
    reconstruction errors in data units (rad); None: not measured (an empty set, an
    older model)."""
    iwae_bound: float | None = None
    rmse: float | None = None
    max_abs_error: float | None = None     # the worst joint of the worst pose
    pose_error_p99: float | None = None    # the worst joint, 99th percentile over poses

    @classmethod
    def from_dict(cls, doc):
        return _typed(cls, doc)


@dataclass(frozen=True)
class Diagnosis:
    """Did the model learn anything?"""
    mean_predictor_rmse: float | None = None   # rad, predicting the training mean pose
    rmse_ratio: float | None = None            # held-out RMSE / mean_predictor_rmse
    active_latent_dims: int | None = None      # latent dimensions that carry information
    collapsed: bool = False                    # learned (almost) nothing

    @classmethod
    def from_dict(cls, doc):
        return _typed(cls, doc)


@dataclass(frozen=True)
class LatentDimSearch:
    """--latent-dim auto: the held-out RMSE of each latent dimension tried, the one kept."""
    tried: dict            # latent dimension -> held-out RMSE (rad)
    chosen: int
    factor: float          # kept: the smallest within this x the best RMSE


@dataclass
class TrainingReport:
    held_out: Reconstruction
    train: Reconstruction
    n_train: int | None = None
    n_held_out: int | None = None
    diagnosis: Diagnosis | None = None
    data_noise: float | None = None      # rad, the data's own noise around the latent surface
    train_seconds: float | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    latent_dim_search: LatentDimSearch | None = None
    recording: dict | None = None        # the recording it was trained from (data.recordings)

    def as_dict(self):
        """The mapping model.yaml keeps: figures not measured are left out."""
        return _without_none(asdict(self))

    @classmethod
    def of(cls, model):
        """The report in a model's model.yaml, or None when it has none."""
        return cls.from_dict((getattr(model, "meta", None) or {}).get("report"))

    @classmethod
    def from_dict(cls, doc):
        """A report from its mapping; None unless it is one. A figure of the wrong type
        reads as None (model.yaml is a document, not trusted to be well formed)."""
        if not isinstance(doc, dict):
            return None
        recording = doc.get("recording")
        return cls(held_out=Reconstruction.from_dict(doc.get("held_out")) or Reconstruction(),
                   train=Reconstruction.from_dict(doc.get("train")) or Reconstruction(),
                   diagnosis=Diagnosis.from_dict(doc.get("diagnosis")),
                   latent_dim_search=_search(doc.get("latent_dim_search")),
                   recording=recording if isinstance(recording, dict) else None,
                   **{name: _number(doc.get(name)) for name in NUMBERS})


NUMBERS = ("n_train", "n_held_out", "data_noise", "train_seconds", "epochs_run",
           "best_epoch")


def _number(value):
    """A number as written (NaN included: an empty held-out set), else None."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _search(doc):
    if not (isinstance(doc, dict) and isinstance(doc.get("tried"), dict)
            and is_number(doc.get("chosen")) and is_number(doc.get("factor"))):
        return None
    return LatentDimSearch(doc["tried"], doc["chosen"], doc["factor"])


def _typed(cls, doc):
    """cls from a mapping of its fields, numbers checked (bools for bool fields)."""
    if not isinstance(doc, dict):
        return None
    values = {}
    for f in fields(cls):
        value = doc.get(f.name)
        values[f.name] = (value is True) if f.type is bool else _number(value)
    return cls(**values)


def _without_none(value):
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value
