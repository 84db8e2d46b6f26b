"""The bottom layer: what every stage shares (errors, defaults, typed options, file output, the
preprocessing contract, ONNX loading, batching, metrics, engine manifests, TensorRT versions).

Modules here import nothing from reid_trt outside core/ (tests/test_layers.py enforces it).
"""
