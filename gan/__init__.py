"""GAN variants (vanilla, LSGAN, WGAN-GP): models, losses, training and the ``python -m gan`` CLI."""
