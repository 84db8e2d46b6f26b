"""Serving with NVIDIA Triton Inference Server: model repositories, the server, and clients."""

__all__ = ["ServerConfig", "ServeOptions", "TritonEmbedder", "TritonServer", "write_repository"]


def __getattr__(name: str):
    # Lazy: a client app pulls in tritonclient only, a repository writer neither it nor grpc.
    if name == "TritonEmbedder":
        from reid_trt.serving.client import TritonEmbedder

        return TritonEmbedder
    if name in ("TritonServer", "ServerConfig"):
        from reid_trt.serving import server

        return getattr(server, name)
    if name == "ServeOptions":
        from reid_trt.serving.config import ServeOptions

        return ServeOptions
    if name == "write_repository":
        from reid_trt.serving.repository import write_repository

        return write_repository
    raise AttributeError(f"module 'reid_trt.serving' has no attribute {name!r}")
