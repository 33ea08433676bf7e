"""alphaloop: an autoresearch loop for trading strategies whose numbers can be trusted."""

__version__ = "0.1.0"
