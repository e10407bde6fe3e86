"""The generative model: the IWAE (iwae.py), its training (training.py, also the
`train_iwae` command), the decoder's data-aware uncertainty (uncertainty.py) and
loading a model with its graph (loading.py)."""
from latent_geodesics.model.iwae import IWAE, ModelError, load_model, save_model

__all__ = ["IWAE", "ModelError", "load_model", "save_model"]
