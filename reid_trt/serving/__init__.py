"""Serving with NVIDIA Triton Inference Server: model repositories, the server, and clients."""

__all__ = ["TritonEmbedder", "TritonServer", "write_repository"]


def __getattr__(name: str):
    # Lazy: a client app pulls in tritonclient only, a repository writer neither it nor grpc.
    if name == "TritonEmbedder":
        from reid_trt.serving.client import TritonEmbedder

        return TritonEmbedder
    if name == "TritonServer":
        from reid_trt.serving.server import TritonServer

        return TritonServer
    if name == "write_repository":
        from reid_trt.serving.repository import write_repository

        return write_repository
    raise AttributeError(f"module 'reid_trt.serving' has no attribute {name!r}")
