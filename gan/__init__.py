"""Chapter 01: GAN variants (vanilla, LSGAN, WGAN-GP) on one training loop; see :class:`gan.train.GanRun`."""

from gan.train import GanConfig, GanRun, config_for

__all__ = ["GanConfig", "GanRun", "config_for"]
