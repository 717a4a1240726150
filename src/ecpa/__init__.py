"""ECPA: the e-commerce poverty alleviation platform."""

__version__ = "0.1.0"
