"""ONNX -> TensorRT engines (TensorRT 10/11 or TensorRT-RTX), with a sidecar manifest."""
