"""reid-trt's version: written into every graph's contract, manifest and benchmark report."""

__version__ = "0.1.0"
