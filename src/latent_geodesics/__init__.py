"""latent_geodesics: geodesics in the latent space of deep generative models."""
__version__ = "0.1.0"
