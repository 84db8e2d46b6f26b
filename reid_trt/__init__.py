"""reid-trt: OSNet person re-identification from torchreid checkpoints to TensorRT."""

from reid_trt.core.version import __version__

__all__ = ["Embedder", "__version__"]


def __getattr__(name: str):
    # Lazy: `import reid_trt` stays cheap; the runtime's imports come with the first use.
    if name == "Embedder":
        from reid_trt.runtime.embedder import Embedder

        return Embedder
    raise AttributeError(f"module 'reid_trt' has no attribute {name!r}")
