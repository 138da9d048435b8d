"""evla-miner: keep the Efficient-VLA survey up to date from arXiv."""

__version__ = "0.1.0"
