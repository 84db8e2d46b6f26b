"""reid-trt: OSNet person re-identification from torchreid checkpoints to TensorRT."""

__version__ = "0.1.0"
