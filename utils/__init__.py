"""Helpers shared by every model family: data, training, metrics, plotting, widgets, profiles."""
