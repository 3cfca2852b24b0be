"""The version of the lossreg distribution."""

__version__ = "0.1.0"
