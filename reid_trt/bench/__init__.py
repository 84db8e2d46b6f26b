"""Benchmarks of engines, graphs and checkpoints side by side (the library behind reid-bench)."""
