"""PyTorch to ONNX: BN folding, preprocessing and normalisation in the graph, precision, checks."""
