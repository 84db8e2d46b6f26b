"""Clients of a served model: `TritonBackend` (the Backend contract over Triton's gRPC or HTTP
API) and `TritonEmbedder`, which is `Embedder` over it: the same `embed` / `embed_boxes`, the
preprocessing read from the served model's config."""

from __future__ import annotations

import threading

import numpy as np

from reid_trt.core.batching import BatchLimits
from reid_trt.core.errors import MissingDependencyError, ReidTrtError, opt
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


def _type_name(data_type: int) -> str:
    from reid_trt.serving.config import model_config_pb2

    return model_config_pb2().DataType.Name(data_type).removeprefix("TYPE_")


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
        raise ReidTrtError(f"{opt('triton')} {target}: expected HOST:PORT/MODEL (gRPC) or "
                           "http://HOST:PORT/MODEL, e.g. localhost:8001/osnet")
    return url, model, protocol


# Connecting (the channel, readiness, the model's config) waits at least this long, whatever the
# per-request timeout: a budget of a few milliseconds is for requests, and a live server on a busy
# machine took longer than 5 ms to answer a first call, which was reported as "no server answers".
CONNECT_TIMEOUT_MIN = 1.0


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
        wait = max(timeout, CONNECT_TIMEOUT_MIN)
        # gRPC takes a timeout per call, so the checks open the channel the requests then use;
        # HTTP's timeouts belong to its client, so the checks get one of their own.
        http = self.protocol == Protocol.HTTP
        client = self._new_client(wait) if http else self.client()
        try:
            ready = client.is_model_ready(model, **self._timeout(wait))
            config = self._config(client, wait) if ready else None
        except Exception as e:  # InferenceServerException or a connection error
            raise ReidTrtError(f"no Triton server answers at {url} ({self.protocol}) within "
                               f"{wait:g} s: {one_line(e)}; start one with 'reid-serve --repo DIR'"
                               ) from None
        finally:
            if http:
                client.close()
        if not ready:
            raise ReidTrtError(f"Triton at {url} has no ready model '{model}'; check the name "
                               "(reid-serve prints the models it serves)")
        self.contract = served_contract(config, f"model '{model}' at {url}")
        self._check_served(config)
        self.input = config.input[0]
        self.input_dtype = _type_name(self.input.data_type)
        self.output_name = config.output[0].name
        self.limits = BatchLimits(1, config.max_batch_size or None)

    def _timeout(self, seconds: float | None = None) -> dict:
        """The per-call timeout keyword of this protocol's client (HTTP's is set on the client)."""
        seconds = self.timeout if seconds is None else seconds
        return {"client_timeout": seconds} if self.protocol == Protocol.GRPC else {}

    def _check_served(self, config) -> None:
        """The served config (one input, one output, their dims and types) against the contract
        it carries: a server whose model was swapped or edited is refused on connect."""
        c = self.contract
        image = (c.height, c.width, 3) if c.input_format == "uint8-bgr" else (3, c.height, c.width)
        problems = []
        if len(config.input) != 1 or len(config.output) != 1:
            problems.append(f"{len(config.input)} inputs and {len(config.output)} outputs, not 1 "
                            "and 1")
        else:
            dims_in, dims_out = tuple(config.input[0].dims), tuple(config.output[0].dims)
            if dims_in != image:
                problems.append(f"input dims {list(dims_in)}, the contract says {list(image)}")
            if dims_out != (c.embedding_dim,):
                problems.append(f"output dims {list(dims_out)}, the contract says "
                                f"[{c.embedding_dim}]")
            if _type_name(config.output[0].data_type) not in ("FP32", "FP16"):
                problems.append(f"output type {_type_name(config.output[0].data_type)}, not "
                                "FP32 or FP16")
        if problems:
            raise ReidTrtError(f"model '{self.model}' at {self.url} does not serve what its "
                               f"contract says: {'; '.join(problems)}; rewrite the repository "
                               "with 'reid-export triton'")

    def _config(self, client, wait: float):
        if self.protocol == Protocol.GRPC:
            return client.get_model_config(self.model, **self._timeout(wait)).config
        # HTTP gives JSON; the same message, parsed with Triton's schema.
        from google.protobuf import json_format

        from reid_trt.serving.config import model_config_pb2

        return json_format.ParseDict(client.get_model_config(self.model),
                                     model_config_pb2().ModelConfig(), ignore_unknown_fields=True)

    def _new_client(self, timeout: float):
        if self.protocol == Protocol.GRPC:
            return self.module.InferenceServerClient(self.url)
        return self.module.InferenceServerClient(self.url, connection_timeout=timeout,
                                                 network_timeout=timeout)

    def client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._new_client(self.timeout)
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
        return self._checked(result.as_numpy(self.output_name), len(batch))

    def _checked(self, rows, sent: int) -> np.ndarray:
        """A response's rows, or an error if they are not one embedding per crop sent: numpy
        would broadcast one row over three crops without a word."""
        width = self.contract.embedding_dim
        if rows is None or not isinstance(rows, np.ndarray) or rows.dtype.kind != "f" or \
                rows.shape != (sent, width):
            got = "no output" if rows is None else \
                f"{getattr(rows, 'dtype', type(rows).__name__)} {list(getattr(rows, 'shape', []))}"
            raise ReidTrtError(f"Triton ({self.url}, model '{self.model}') answered {got} for "
                               f"{sent} crops, not {sent} float rows of {width}; the server's "
                               "model does not match its repository: restart 'reid-serve' on a "
                               "repository written by 'reid-export triton'")
        return rows.astype(np.float32, copy=False)

    def run_device(self, tensor) -> np.ndarray:
        raise ReidTrtError("a served model takes host arrays; pass crops or a CPU tensor")

    def statistics(self) -> dict:
        """Triton's inference statistics for the model: {batch size: executions}."""
        stats = self.client().get_inference_statistics(self.model, **self._timeout())
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
        timeout: seconds to wait for each request (connecting waits at least
            CONNECT_TIMEOUT_MIN, 1 s).
    """

    def __new__(cls, url: str, model: str, *, protocol: str = "grpc",
                max_batch: int | None = None, normalize: bool = True, timeout: float = 30.0):
        if max_batch is not None:
            batch_size(max_batch, "max_batch")  # before connecting
        return cls.from_backend(TritonBackend(url, model, protocol, timeout), max_batch=max_batch,
                                normalize=normalize)

    def __init__(self, *args, **kwargs):
        pass  # built by __new__, through Embedder.from_backend

    def statistics(self) -> dict:
        return self.backend.statistics()

    def __repr__(self) -> str:
        return (f"TritonEmbedder({self.backend.url}, model={self.backend.model}, "
                f"protocol={self.backend.protocol}, variant={self.contract.variant})")
