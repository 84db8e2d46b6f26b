"""Backends run a preprocessed batch in the graph's input format and return (N, D) float32."""
