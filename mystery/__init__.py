"""mystery: measure how fast brands answer their customers."""

__version__ = "0.1.0"
