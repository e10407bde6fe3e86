"""rviz view of latent_geodesics: the ghost robot's trajectory player."""
