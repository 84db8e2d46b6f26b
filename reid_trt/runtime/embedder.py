"""`Embedder`: person crops in, L2-normalised re-ID embeddings out, over any backend."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reid_trt.core import defaults
from reid_trt.core.batching import clip_boxes, pad_batch
from reid_trt.core.contract import Contract
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.machine import cuda_present
from reid_trt.core.manifest import ENGINE_SUFFIXES
from reid_trt.core.options import (
    BackendName,
    ConfigError,
    Device,
    Spin,
    batch_size,
    choice,
    parse_device,
)
from reid_trt.core.preprocess import as_bgr, graph_input
from reid_trt.core.threads import for_backend
from reid_trt.runtime.backends.base import Backend, PreprocessingCompiledIn

if TYPE_CHECKING:
    from reid_trt.runtime.cpu_choice import CpuChoice

TORCH_SUFFIXES = (".pth", ".pt", ".tar")


def default_device() -> Device:
    return Device("cuda", 0) if cuda_present() else Device("cpu")


def open_backend(path: Path, device: str | Device | None = None, variant: str = "auto",
                 trust_checkpoint: bool = False, backend: str | None = None,
                 spin: str | Spin | None = None, threads: int | None = None
                 ) -> tuple[Backend, CpuChoice | None]:
    """The backend for a model file, and the CpuChoice where one was made: `backend` if given,
    else by the file's suffix; an .onnx on the CPU runs on whichever of ONNX Runtime and OpenVINO
    is faster here (runtime/cpu_choice.py; with `spin` given, ONNX Runtime: only it has that
    setting). device None: cuda:0 if present (OpenVINO: the CPU)."""
    suffix = path.suffix.lower()
    backend = None if backend is None else choice(BackendName, backend, "backend")
    spin = None if spin is None else choice(Spin, spin, "spin")
    if path.is_dir():
        raise ReidTrtError(f"{path} is a directory; pass an engine (.plan), a graph (.onnx) or a "
                           "checkpoint (.pth)")
    if not path.is_file():
        raise ReidTrtError(f"{path}: no such file; pass an engine (.plan), a graph (.onnx) or a "
                           "checkpoint (.pth)")
    if backend == BackendName.OPENVINO or (backend is None and suffix == ".xml"):
        if suffix not in (".onnx", ".xml"):
            raise ReidTrtError(f"{path}: OpenVINO runs an .onnx from reid-export or an IR .xml "
                               "from 'reid-export openvino'")
        from reid_trt.runtime.backends.openvino import OpenVINOBackend

        settings = for_backend(BackendName.OPENVINO, spin, threads)
        return OpenVINOBackend(path, None if device is None else str(device),
                               threads=settings), None
    wanted = {BackendName.TENSORRT: ENGINE_SUFFIXES, BackendName.ONNXRUNTIME: (".onnx",),
              BackendName.TORCH: TORCH_SUFFIXES}
    if backend is not None and suffix not in wanted[backend]:
        raise ConfigError("backend", str(backend), f"{path.name} is not a model it runs (it takes "
                          f"{', '.join(wanted[backend])})")
    chosen = device is not None
    device = parse_device(device) if chosen else default_device()
    if suffix in ENGINE_SUFFIXES:
        from reid_trt.runtime.backends.tensorrt import TensorRTBackend

        for_backend(BackendName.TENSORRT, spin, threads)
        return TensorRTBackend(path, device), None
    if suffix == ".onnx" and backend is None and not device.is_cuda:
        from reid_trt.runtime.cpu_choice import choose_cpu_backend

        return choose_cpu_backend(path, spin, threads)
    if suffix == ".onnx":
        from reid_trt.runtime.backends.onnxruntime import OnnxRuntimeBackend

        settings = for_backend(BackendName.ONNXRUNTIME, spin, threads)
        return OnnxRuntimeBackend(path, device, device_chosen=chosen, threads=settings), None
    if suffix in TORCH_SUFFIXES:
        from reid_trt.runtime.backends.torch import TorchBackend

        for_backend(BackendName.TORCH, spin, threads)
        return TorchBackend(path, device, variant, trust_checkpoint), None
    raise ReidTrtError(f"{path}: unknown model type '{suffix}'; pass .plan/.engine, .onnx, .xml "
                       "or .pth")


class Embedder:
    """Embeds person crops with an OSNet engine, ONNX graph or checkpoint.

    The preprocessing contract (input size, colour order, mean/std, whether preprocessing and L2
    normalisation are inside the graph) comes from the ONNX metadata or the engine manifest.

    Args:
        path: a TensorRT engine (.plan/.engine, with its .json manifest), an .onnx exported by
            reid-export, or a torchreid checkpoint (.pth).
        device: "cuda", "cuda:N" or "cpu"; None picks cuda:0 when a CUDA device is present.
            OpenVINO: "cpu" (default), "gpu", "gpu:N", "npu" or "auto".
        max_batch: largest batch per backend call (default: the engine profile's maximum, else
            64). Crops are preprocessed one such chunk at a time, so memory stays bounded by
            the chunk, not by the number of crops.
        normalize: L2-normalise the embeddings (a no-op if the graph already does).
        variant, trust_checkpoint: for .pth files, as in `reid-export onnx`.
        backend: "onnxruntime", "openvino", "tensorrt" or "torch"; None chooses by suffix
            (.plan/.engine TensorRT, .xml OpenVINO, .pth PyTorch; .onnx: ONNX Runtime on a CUDA
            device, on the CPU whichever of ONNX Runtime and OpenVINO is faster on this machine,
            measured on first load and remembered; `cpu_choice` says which and why).
        spin: when ONNX Runtime's CPU threads busy-wait: "call" (the default) spins only while a
            call runs, so a detector running between re-ID calls gets the cores; "always"
            (ONNX Runtime's own default) also between calls, for a machine that runs nothing
            else; "never" sleeps at every wait (core/options.Spin has the measurements). Only
            ONNX Runtime has this setting: given for another backend it is refused, and an
            .onnx on the CPU then runs on ONNX Runtime.
        threads: CPU worker threads per call for ONNX Runtime or OpenVINO (default:
            REID_TRT_THREADS where it is set, else one per core this process may use); refused
            for TensorRT and PyTorch.

    Thread safety: `embed` may be called from several threads at once; ONNX Runtime and PyTorch
    run concurrently, the TensorRT backend serialises calls on its one execution context.
    """

    cpu_choice: CpuChoice | None = None  # why this backend, where Embedder chose among CPU ones
    path: Path | None = None  # the model file; None for a backend opened elsewhere
    contract: Contract  # how the backend is fed: what `preprocess` makes
    model_contract: Contract  # what the model file states (differs where the backend compiled
    # the normalisation in: OpenVINO, and ONNX Runtime on the CPU, take the resized uint8 batch)

    def __init__(self, path: str | Path, *, device: str | None = None, max_batch: int | None = None,
                 normalize: bool = True, variant: str = "auto", trust_checkpoint: bool = False,
                 backend: str | None = None, spin: str | None = None,
                 threads: int | None = None):
        if max_batch is not None:
            batch_size(max_batch, "max_batch")
        self.path = Path(path)
        opened, self.cpu_choice = open_backend(self.path, device, variant, trust_checkpoint, backend,
                                               spin, threads)
        self._attach(opened, max_batch, normalize)

    @classmethod
    def from_backend(cls, backend: Backend, contract: Contract | None = None, *,
                     max_batch: int | None = None, normalize: bool = True) -> Embedder:
        """An Embedder over a backend opened elsewhere: a served model (TritonEmbedder), or a
        runtime of your own that implements the Backend protocol. `contract`: how to feed it,
        where the backend does not say itself."""
        if not isinstance(backend, Backend):
            raise ReidTrtError(f"{type(backend).__name__} is not a Backend (it needs name, device, "
                               "contract, limits, accepts_device_tensors, run, run_device, close)")
        if max_batch is not None:
            batch_size(max_batch, "max_batch")
        embedder = object.__new__(cls)  # no file to open: __init__'s work is _attach's
        embedder._attach(backend, max_batch, normalize, contract)
        return embedder

    def _attach(self, backend: Backend, max_batch: int | None, normalize: bool,
                contract: Contract | None = None) -> None:
        self.backend = backend
        self.contract = contract or self.backend.contract
        # What the file says, where the backend compiled the preprocessing in and is fed otherwise
        self.model_contract = backend.model_contract if contract is None and isinstance(
            backend, PreprocessingCompiledIn) else self.contract
        self.normalize = normalize
        limits = self.backend.limits
        if max_batch is not None and max_batch < limits.min:
            self.backend.close()
            raise ReidTrtError(f"max_batch={max_batch} is below the engine profile's minimum "
                               f"batch {limits.min}")
        self.max_batch = min(b for b in (max_batch, limits.max) if b) \
            if (max_batch or limits.max) else None
        # Preprocess the next chunk while the backend computes this one, where the compute is
        # not on the host's cores: on a 2-core CPU the runtime already uses both, and 256 crops
        # in chunks of 32 took 4-12% longer overlapped on ONNX Runtime, 0-3% less on OpenVINO.
        device = str(backend.device).lower()
        self.overlap = not (device == "cpu" or device.endswith(":cpu"))

    @property
    def dim(self) -> int:
        return self.contract.embedding_dim

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def chunk(self) -> int:
        """Crops preprocessed and run per backend call."""
        return self.max_batch or defaults.EMBED_CHUNK

    def preprocess(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Crops -> the graph's input batch (resized; normalised unless the graph does it)."""
        return graph_input(crops, self.contract)

    def _run(self, n: int, batch_of) -> np.ndarray:
        """Runs inputs 0..n in chunks the backend takes; `batch_of(start, stop)` makes each.
        With several chunks on a backend that computes off the host CPU (a GPU, an NPU, a
        server), the next chunk is preprocessed on a helper thread while the backend computes
        this one (OpenCV, NumPy and the runtimes release the GIL); at most two chunks are held
        at once."""
        out = np.empty((n, self.dim), dtype=np.float32)
        chunks = self.backend.limits.plan(n, self.chunk)

        def make(c):
            return pad_batch(batch_of(c.start, c.stop), c.padded)

        if len(chunks) == 1 or not self.overlap:
            for c in chunks:
                out[c.start:c.stop] = self.backend.run(make(c))[:c.stop - c.start]
            return out
        with ThreadPoolExecutor(1, thread_name_prefix="reid-trt-preprocess") as helper:
            ready = helper.submit(make, chunks[0])
            for i, c in enumerate(chunks):
                part = ready.result()
                if i + 1 < len(chunks):
                    ready = helper.submit(make, chunks[i + 1])
                out[c.start:c.stop] = self.backend.run(part)[:c.stop - c.start]
        return out

    def _finish(self, v: np.ndarray) -> np.ndarray:
        if self.normalize and not self.contract.normalized:
            v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), defaults.L2_EPS)
        return v

    def embed(self, crops) -> np.ndarray:
        """Crops -> (N, D) float32 embeddings.

        Args:
            crops: a list of HxWx3 uint8 BGR images (OpenCV's convention; HxW gray and HxWx4
                BGRA are converted), an N,H,W,3 uint8 array, or a torch tensor already in the
                graph's input layout (see `embed_tensor`).
        """
        if type(crops).__module__.startswith("torch"):
            return self.embed_tensor(crops)
        if isinstance(crops, np.ndarray) and crops.ndim == 3 and crops.dtype == np.uint8 and \
                crops.shape[-1] in (1, 3, 4):
            raise ReidTrtError(f"got one image of shape {crops.shape}; pass a list of crops "
                               "([crop]) or an N,H,W,3 array")
        if isinstance(crops, (str, bytes, Path)) or not hasattr(crops, "__len__"):
            raise ReidTrtError(f"crops is a {type(crops).__name__}; pass a list of HxWx3 uint8 "
                               "BGR images (cv2.imread gives one)")
        if len(crops) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        crops = list(crops)
        for i, crop in enumerate(crops):  # every crop checked before any work is done
            crops[i] = as_bgr(crop, i)
        return self._finish(self._run(len(crops), lambda a, b: self.preprocess(crops[a:b])))

    def embed_boxes(self, frame: np.ndarray, boxes_xyxy) -> np.ndarray:
        """Crops `boxes_xyxy` (N, 4: x0, y0, x1, y1 in pixels) out of `frame` and embeds them.

        Boxes are clipped to the frame. A box with no pixel left inside the frame (outside it,
        zero-sized, inverted or NaN) gets an all-zero row: its cosine similarity to anything is 0,
        so it never matches a track, and the rows stay aligned with the boxes.
        """
        frame = as_bgr(frame, "frame")
        boxes, valid = clip_boxes(boxes_xyxy, frame.shape[:2])
        out = np.zeros((len(boxes), self.dim), dtype=np.float32)
        crops = [frame[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes[valid]]
        if crops:
            out[valid] = self.embed(crops)
        return out

    def embed_tensor(self, tensor) -> np.ndarray:
        """A torch tensor already preprocessed into the graph's input (N,H,W,3 uint8 for
        uint8-bgr graphs, N,3,H,W float otherwise). On a GPU backend a CUDA tensor is used in
        place, with no host round trip; other backends get a host copy."""
        expected = self.contract.input_shape(int(tensor.shape[0]))
        if tuple(tensor.shape) != expected:
            raise ReidTrtError(f"tensor of shape {tuple(tensor.shape)}; this model takes "
                               f"{expected} ({self.contract.input_format})")
        if tensor.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        limits = self.backend.limits
        if tensor.is_cuda and self.backend.accepts_device_tensors:
            chunks = limits.plan(len(tensor), self.chunk)
            if all(limits.fits(c.stop - c.start) for c in chunks):
                return self._finish(np.concatenate(
                    [self.backend.run_device(tensor[c.start:c.stop]) for c in chunks]))
        host = tensor.detach().cpu().numpy()
        return self._finish(self._run(len(host), lambda a, b: host[a:b]))

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        source = self.path.name if self.path else "opened backend"
        return (f"Embedder({source}, backend={self.backend.name}, "
                f"device={self.backend.device}, variant={self.contract.variant})")
