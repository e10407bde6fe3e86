"""`python -m latent_geodesics.training`: the train_iwae command (model/training.py)."""
from latent_geodesics.model.training import main

if __name__ == "__main__":
    main()
