"""`Embedder`: person crops in, L2-normalised re-ID embeddings out, over any backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reid_trt import defaults
from reid_trt.errors import ReidTrtError
from reid_trt.preprocess import graph_input
from reid_trt.runtime.planning import clip_boxes, pad_batch, plan_batches

ENGINE_SUFFIXES = (".plan", ".engine", ".trt")
TORCH_SUFFIXES = (".pth", ".pt", ".tar")


def _default_device() -> str:
    try:
        from cuda.bindings import runtime as cudart

        err, count = cudart.cudaGetDeviceCount()
        return "cuda:0" if int(err) == 0 and count > 0 else "cpu"
    except Exception:  # no cuda-python or no driver: the CPU it is
        return "cpu"


def open_backend(path: Path, device: str, variant: str, trust_checkpoint: bool):
    """The backend for a model file, chosen by its suffix."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ReidTrtError(f"{path}: no such file; pass an engine (.plan), a graph (.onnx) or a "
                           "checkpoint (.pth)")
    if suffix in ENGINE_SUFFIXES:
        from reid_trt.runtime.backends.tensorrt import TensorRTBackend

        return TensorRTBackend(path, device)
    if suffix == ".onnx":
        from reid_trt.runtime.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, device)
    if suffix in TORCH_SUFFIXES:
        from reid_trt.runtime.backends.torch import TorchBackend

        return TorchBackend(path, device, variant, trust_checkpoint)
    raise ReidTrtError(f"{path}: unknown model type '{suffix}'; pass .plan/.engine, .onnx or .pth")


class Embedder:
    """Embeds person crops with an OSNet engine, ONNX graph or checkpoint.

    The preprocessing contract (input size, colour order, mean/std, whether preprocessing and L2
    normalisation are inside the graph) comes from the ONNX metadata or the engine manifest.

    Args:
        path: a TensorRT engine (.plan/.engine, with its .json manifest), an .onnx exported by
            reid-export, or a torchreid checkpoint (.pth).
        device: "cuda:N" or "cpu"; None picks cuda:0 when a CUDA device is present.
        max_batch: largest batch per backend call (default: the engine profile's maximum;
            unlimited for ONNX Runtime and PyTorch).
        normalize: L2-normalise the embeddings (a no-op if the graph already does).
        variant, trust_checkpoint: for .pth files, as in `reid-export onnx`.

    Thread safety: `embed` may be called from several threads at once; ONNX Runtime and PyTorch
    run concurrently, the TensorRT backend serialises calls on its one execution context.
    """

    def __init__(self, path: str | Path, *, device: str | None = None, max_batch: int | None = None,
                 normalize: bool = True, variant: str = "auto", trust_checkpoint: bool = False):
        self.path = Path(path)
        self.backend = open_backend(self.path, device or _default_device(), variant,
                                    trust_checkpoint)
        self.contract = self.backend.contract
        self.normalize = normalize
        limits = [b for b in (max_batch, self.backend.max_batch) if b]
        if max_batch is not None and max_batch < 1:
            raise ReidTrtError(f"max_batch={max_batch}: must be >= 1")
        self.max_batch = min(limits) if limits else None
        if (self.max_batch and self.backend.min_batch > self.max_batch):
            raise ReidTrtError(f"max_batch={max_batch} is below the engine profile's minimum "
                               f"batch {self.backend.min_batch}")

    @property
    def dim(self) -> int:
        return self.contract.embedding_dim

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def preprocess(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Crops -> the graph's input batch (resized; normalised unless the graph does it)."""
        return graph_input(crops, self.contract)

    def _run(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((len(x), self.dim), dtype=np.float32)
        for chunk in plan_batches(len(x), self.max_batch, self.backend.min_batch,
                                  self.backend.static_batch):
            part = pad_batch(x[chunk.start:chunk.stop], chunk.padded)
            out[chunk.start:chunk.stop] = self.backend.run(part)[:chunk.stop - chunk.start]
        return out

    def _finish(self, v: np.ndarray) -> np.ndarray:
        if self.normalize and not self.contract.normalized:
            v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), defaults.L2_EPS)
        return v

    def embed(self, crops) -> np.ndarray:
        """Crops -> (N, D) float32 embeddings.

        Args:
            crops: a list of HxWx3 uint8 BGR images (OpenCV's convention; HxW gray and HxWx4
                BGRA are converted), an N,H,W,3 uint8 array, or a torch CUDA tensor already in
                the graph's input layout (see `embed_tensor`).
        """
        if type(crops).__module__.startswith("torch"):
            return self.embed_tensor(crops)
        if isinstance(crops, np.ndarray) and crops.ndim == 3 and crops.dtype == np.uint8 and \
                crops.shape[-1] in (1, 3, 4):
            raise ReidTrtError(f"got one image of shape {crops.shape}; pass a list of crops "
                               "([crop]) or an N,H,W,3 array")
        if len(crops) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._finish(self._run(self.preprocess(list(crops))))

    def embed_boxes(self, frame: np.ndarray, boxes_xyxy) -> np.ndarray:
        """Crops `boxes_xyxy` (N, 4: x0, y0, x1, y1 in pixels) out of `frame` and embeds them.

        Boxes are clipped to the frame. A box with no pixel left inside the frame (outside it,
        zero-sized, inverted or NaN) gets an all-zero row: its cosine similarity to anything is 0,
        so it never matches a track, and the rows stay aligned with the boxes.
        """
        from reid_trt.preprocess import as_bgr

        frame = as_bgr(frame)
        boxes, valid = clip_boxes(boxes_xyxy, frame.shape[:2])
        out = np.zeros((len(boxes), self.dim), dtype=np.float32)
        crops = [frame[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes[valid]]
        if crops:
            out[valid] = self.embed(crops)
        return out

    def embed_tensor(self, tensor) -> np.ndarray:
        """A torch tensor already preprocessed into the graph's input (N,H,W,3 uint8 for
        uint8-bgr graphs, N,3,H,W float otherwise). On a GPU backend it is used in place, with
        no host round trip; ONNX Runtime on the CPU copies it to host memory."""
        expected = self.contract.input_shape(int(tensor.shape[0]))
        if tuple(tensor.shape) != expected:
            raise ReidTrtError(f"tensor of shape {tuple(tensor.shape)}; this model takes "
                               f"{expected} ({self.contract.input_format})")
        if tensor.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if hasattr(self.backend, "run_device") and tensor.is_cuda:
            chunks = plan_batches(len(tensor), self.max_batch, self.backend.min_batch,
                                  self.backend.static_batch)
            if all(c.padded == c.stop - c.start for c in chunks):
                return self._finish(np.concatenate(
                    [self.backend.run_device(tensor[c.start:c.stop]) for c in chunks]))
        if hasattr(self.backend, "run_tensor"):
            return self._finish(self.backend.run_tensor(tensor).cpu().numpy())
        return self._finish(self._run(tensor.detach().cpu().numpy()))

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Embedder({self.path.name}, backend={self.backend.name}, "
                f"device={self.backend.device}, variant={self.contract.variant})")
