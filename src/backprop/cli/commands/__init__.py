"""One module per command; importing each registers its command with the group
(:data:`backprop.cli.app.cli`)."""

from . import evaluate, explain, export, gradcheck, predict, train

__all__ = ["evaluate", "explain", "export", "gradcheck", "predict", "train"]
