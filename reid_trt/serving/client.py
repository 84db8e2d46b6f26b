"""Clients of a served model: `TritonBackend` (the Backend contract over Triton's gRPC or HTTP
API) and `TritonEmbedder`, which is `Embedder` over it: the same `embed` / `embed_boxes`, the
preprocessing read from the served model's config."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from reid_trt.core.batching import BatchLimits
from reid_trt.core.errors import MissingDependencyError, ReidTrtError
from reid_trt.core.options import Choice, batch_size, choice
from reid_trt.runtime.embedder import Embedder
from reid_trt.serving.config import NUMPY_TYPES, served_contract


class Protocol(Choice):
    GRPC = "grpc"
    HTTP = "http"


def _client_module(protocol: Protocol):
    try:
        if protocol == Protocol.GRPC:
            import tritonclient.grpc as module
        else:
            import tritonclient.http as module
    except ImportError:
        raise MissingDependencyError(f"tritonclient[{protocol}]", "serve",
                                     "talking to Triton Inference Server") from None
    return module


def one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def parse_target(target: str) -> tuple[str, str, Protocol]:
    """'HOST:PORT/MODEL' (gRPC), 'grpc://HOST:PORT/MODEL' or 'http://HOST:PORT/MODEL' ->
    (url, model, protocol)."""
    protocol = Protocol.GRPC
    for scheme in Protocol:
        if target.startswith(f"{scheme}://"):
            protocol, target = scheme, target.removeprefix(f"{scheme}://")
    url, _, model = target.rpartition("/")
    if not url or not model or ":" not in url:
        raise ReidTrtError(f"--triton {target}: expected HOST:PORT/MODEL (gRPC) or "
                           "http://HOST:PORT/MODEL, e.g. localhost:8001/osnet")
    return url, model, protocol


class TritonBackend:
    """Runs batches on a model served by Triton. Thread-safe: a client per thread (Triton's HTTP
    client must not be shared across threads)."""

    name = "triton"
    accepts_device_tensors = False

    def __init__(self, url: str, model: str, protocol: str = "grpc", timeout: float = 30.0):
        self.protocol = choice(Protocol, protocol, "protocol")
        self.module = _client_module(self.protocol)
        self.url, self.model, self.timeout = url, model, timeout
        self.device = f"triton {self.protocol}://{url}"
        self._local = threading.local()
        client = self.client()
        try:
            ready = client.is_model_ready(model)
        except Exception as e:  # InferenceServerException or a connection error
            raise ReidTrtError(f"no Triton server answers at {url} ({self.protocol}): "
                               f"{one_line(e)}; start one with 'reid-serve --repo DIR'") from None
        if not ready:
            raise ReidTrtError(f"Triton at {url} has no ready model '{model}'; check the name "
                               "(reid-serve prints the models it serves)")
        config = self._config(client)
        self.contract = served_contract(config, f"model '{model}' at {url}")
        from reid_trt.serving.config import model_config_pb2

        self.input = config.input[0]
        self.input_dtype = model_config_pb2().DataType.Name(self.input.data_type).removeprefix(
            "TYPE_")
        self.output_name = config.output[0].name
        self.limits = BatchLimits(1, config.max_batch_size or None)

    def _config(self, client):
        if self.protocol == Protocol.GRPC:
            return client.get_model_config(self.model).config
        # HTTP gives JSON; the same message, parsed with Triton's schema.
        from google.protobuf import json_format

        from reid_trt.serving.config import model_config_pb2

        return json_format.ParseDict(client.get_model_config(self.model),
                                     model_config_pb2().ModelConfig(), ignore_unknown_fields=True)

    def client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            client = self.module.InferenceServerClient(self.url) \
                if self.protocol == Protocol.GRPC else self.module.InferenceServerClient(
                    self.url, connection_timeout=self.timeout, network_timeout=self.timeout)
            self._local.client = client
        return client

    def run(self, batch: np.ndarray) -> np.ndarray:
        dtype = self.input_dtype
        data = self.module.InferInput(self.input.name, list(batch.shape), dtype)
        data.set_data_from_numpy(np.ascontiguousarray(batch, dtype=NUMPY_TYPES[dtype]))
        try:
            result = self.client().infer(self.model, [data], client_timeout=self.timeout) \
                if self.protocol == Protocol.GRPC else self.client().infer(self.model, [data])
        except Exception as e:  # Triton's error, passed on in one line
            # Triton appends a NOTE on max_batch_size to shape errors: advice for config
            # authors, not for a client of a repository reid-export wrote.
            reason = one_line(e).split(" NOTE: ")[0]
            raise ReidTrtError(f"Triton ({self.url}, model '{self.model}'): {reason}") from None
        return result.as_numpy(self.output_name).astype(np.float32, copy=False)

    def run_device(self, tensor) -> np.ndarray:
        raise ReidTrtError("a served model takes host arrays; pass crops or a CPU tensor")

    def statistics(self) -> dict:
        """Triton's inference statistics for the model: {batch size: executions}."""
        stats = self.client().get_inference_statistics(self.model)
        if self.protocol == Protocol.GRPC:
            from google.protobuf import json_format

            stats = json_format.MessageToDict(stats, preserving_proto_field_name=True)
        model = stats["model_stats"][0]
        return {int(b["batch_size"]): int(b["compute_infer"]["count"])
                for b in model.get("batch_stats", [])}

    def close(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()
            self._local.client = None


class TritonEmbedder(Embedder):
    """`Embedder` over a model served by Triton (written by `reid-export triton`).

    Args:
        url: "HOST:PORT" of the server's gRPC endpoint (or HTTP's, with protocol="http").
        model: the model's name in the repository.
        protocol: "grpc" (default) or "http".
        max_batch: largest batch per request (default: the served max_batch_size).
        normalize: L2-normalise the embeddings (a no-op if the served model already does).
        timeout: seconds to wait for each request.
    """

    def __init__(self, url: str, model: str, *, protocol: str = "grpc",
                 max_batch: int | None = None, normalize: bool = True, timeout: float = 30.0):
        if max_batch is not None:
            batch_size(max_batch, "max_batch")
        self.path = Path(model)
        self._attach(TritonBackend(url, model, protocol, timeout), max_batch, normalize)

    def statistics(self) -> dict:
        return self.backend.statistics()

    def __repr__(self) -> str:
        return (f"TritonEmbedder({self.backend.url}, model={self.backend.model}, "
                f"protocol={self.backend.protocol}, variant={self.contract.variant})")
