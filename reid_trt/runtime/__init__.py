"""Embedder: one API over TensorRT engines, ONNX Runtime and PyTorch."""

from reid_trt.runtime.embedder import Embedder

__all__ = ["Embedder"]
