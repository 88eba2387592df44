"""Autoencoders, VAEs and beta-VAEs (chapters 02-04)."""
