"""TensorRT / TensorRT-RTX backend over cuda-python.

Device and pinned host buffers are allocated once for the profile's maximum batch and reused;
copies and execution are asynchronous on one CUDA stream, with one synchronisation per call.
Thread safety: one execution context shared under a lock (a context holds per-call shapes and
addresses, so two threads must not drive it at once); throughput-bound apps run one Embedder
per thread instead, each with its own context and stream.
"""

from __future__ import annotations

import ctypes
import re
import threading
from pathlib import Path

import numpy as np
from packaging.version import InvalidVersion, Version

from reid_trt.core.batching import BatchLimits
from reid_trt.core.engine_file import check_engine_file, check_engine_sha256
from reid_trt.core.errors import MissingDependencyError, ReidTrtError
from reid_trt.core.manifest import Manifest, manifest_path, read_manifest, rebuild_advice
from reid_trt.core.options import Device
from reid_trt.core.trt_compat import Trt, collecting_logger, load_trt, sm


def _rebuild(path: Path) -> str:
    return rebuild_advice(path, " on this machine")


def check_engine(path: Path, manifest: Manifest, trt: Trt,
                 device_cc: tuple[int, int] | None = None) -> None:
    """Refuses an engine that this machine's TensorRT or GPU cannot run, before loading it."""
    check_engine_sha256(path, manifest)
    if trt.flavour != manifest.trt_flavour:
        raise ReidTrtError(f"{path} was built by {manifest.trt_flavour} {manifest.trt_version}, "
                           f"but this machine runs {trt.label}; {_rebuild(path)}")
    try:
        built = Version(manifest.trt_version).release[:3]
    except InvalidVersion:
        raise ReidTrtError(f"{manifest_path(path)}: trt_version {manifest.trt_version!r} is not a "
                           f"version; {_rebuild(path)}") from None
    if Version(trt.version).release[:3] != built:
        raise ReidTrtError(f"{path} was built by TensorRT {manifest.trt_version}, this machine "
                           f"has {trt.version}; engines do not move between versions: "
                           f"{_rebuild(path)}")
    if device_cc is not None and not trt.runs_on(device_cc):
        targets = ", ".join(sm(cc) for cc in trt.rtx_targets)
        raise ReidTrtError(f"{path}: {trt.label} does not run on this GPU ({sm(device_cc)}); it "
                           f"runs on {targets} and later GPUs. On this GPU build "
                           "the engine with full TensorRT 10+ (reid-export trt --trt tensorrt "
                           "--onnx MODEL.onnx), or run the .onnx with ONNX Runtime")
    explicit = re.findall(r"sm\d+", manifest.targets)
    if device_cc is not None and explicit and sm(device_cc) not in explicit:
        raise ReidTrtError(f"{path} targets {manifest.targets}, but this GPU is {sm(device_cc)}; "
                           + rebuild_advice(path, " for this GPU", sm(device_cc)))


def _cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python < 12.6
        except ImportError:
            raise MissingDependencyError("cuda-python", "trt", "the TensorRT backend") from None
    return cudart


class TensorRTBackend:
    name = "tensorrt"
    accepts_device_tensors = True

    def __init__(self, path: Path, device: Device):
        path = Path(path)
        self.manifest = read_manifest(path)
        check_engine_file(path, self.manifest)
        self.contract = self.manifest.preprocessing
        if not device.is_cuda:
            raise ReidTrtError(f"{path} is a TensorRT engine: it runs on a GPU (device='cuda:N'); "
                               "on the CPU use the .onnx it was built from")
        self.trt = load_trt(self.manifest.trt_flavour)
        self.cuda = _cudart()
        self.device = str(device)
        profile = self.manifest.profile
        self.limits = BatchLimits(profile.min, profile.max, profile.static)
        self._buffers: dict[str, tuple[int, int, np.ndarray]] = {}
        self.stream = self.context = self.engine = None
        try:
            self._open(path, device)
        except BaseException:
            self.close()  # whatever was allocated before the failure
            raise

    def _open(self, path: Path, device: Device) -> None:
        cudart = self.cuda
        err, count = cudart.cudaGetDeviceCount()
        if int(err) != 0 or count == 0:
            reason = cudart.cudaGetErrorName(err)[1].decode() if int(err) else "0 devices"
            raise ReidTrtError(f"{path}: no usable CUDA device here ({reason}); TensorRT engines "
                               "need an NVIDIA GPU and driver; on the CPU use the .onnx")
        if device.index >= count:
            raise ReidTrtError(f"device '{device}': this machine has {count} CUDA devices")
        props = self._call(cudart.cudaGetDeviceProperties(device.index), "device properties")
        check_engine(path, self.manifest, self.trt, (props.major, props.minor))
        self._call(cudart.cudaSetDevice(device.index), "cudaSetDevice")

        logger = collecting_logger(self.trt)
        self._runtime = self.trt.module.Runtime(logger)
        self.engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise ReidTrtError(f"{self.trt.label} could not load {path} "
                               f"({'; '.join(logger.errors[-2:])}); {_rebuild(path)}")
        self.context = self.engine.create_execution_context()
        self.stream = self._call(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.lock = threading.Lock()

        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = self.trt.module.TensorIOMode.INPUT
        self.input_name = next(n for n in names if self.engine.get_tensor_mode(n) == mode)
        self.output_name = next(n for n in names if self.engine.get_tensor_mode(n) != mode)
        for name in (self.input_name, self.output_name):
            dtype = np.dtype(self.trt.module.nptype(self.engine.get_tensor_dtype(name)))
            shape = [self.limits.max, *self.engine.get_tensor_shape(name)[1:]]
            nbytes = int(np.prod(shape)) * dtype.itemsize
            device_ptr = self._call(cudart.cudaMalloc(nbytes), "cudaMalloc")
            try:
                host_ptr = self._call(cudart.cudaMallocHost(nbytes), "cudaMallocHost")
            except ReidTrtError:
                cudart.cudaFree(device_ptr)
                raise
            host = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(host_ptr))
            self._buffers[name] = (device_ptr, host_ptr, host.view(dtype).reshape(shape))
            self.context.set_tensor_address(name, device_ptr)

    def _call(self, result, what: str):
        err, *values = result
        if int(err) != 0:
            name = self.cuda.cudaGetErrorName(err)[1].decode()
            raise ReidTrtError(f"CUDA {what} failed: {name}")
        return values[0] if len(values) == 1 else values

    def stage(self, batch: np.ndarray) -> None:
        """Copies `batch` into the engine's input buffer on the device (queued on the stream)."""
        d_in, h_in_ptr, h_in = self._buffers[self.input_name]
        n = len(batch)
        np.copyto(h_in[:n], batch, casting="same_kind")
        self.context.set_input_shape(self.input_name, batch.shape)
        self._call(self.cuda.cudaMemcpyAsync(d_in, h_in_ptr, h_in[:n].nbytes,
                                             self.cuda.cudaMemcpyKind.cudaMemcpyHostToDevice,
                                             self.stream), "copy to device")

    def execute(self, shape: tuple, wait: bool = True) -> None:
        """Runs the engine on what is staged (queued on the stream; `wait`: and waits for it)."""
        self.context.set_input_shape(self.input_name, shape)
        if not self.context.execute_async_v3(int(self.stream)):
            raise ReidTrtError(f"{self.trt.label}: execution failed for batch {tuple(shape)}")
        if wait:
            self._call(self.cuda.cudaStreamSynchronize(self.stream), "synchronize")

    def fetch(self, n: int) -> np.ndarray:
        """The first n output rows, copied to the host after what is queued on the stream."""
        d_out, h_out_ptr, h_out = self._buffers[self.output_name]
        self._call(self.cuda.cudaMemcpyAsync(h_out_ptr, d_out, h_out[:n].nbytes,
                                             self.cuda.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                                             self.stream), "copy to host")
        self._call(self.cuda.cudaStreamSynchronize(self.stream), "synchronize")
        return h_out[:n].astype(np.float32, copy=True)

    def run(self, batch: np.ndarray) -> np.ndarray:
        # One synchronisation per call: copy in, execute and copy out are queued on one stream.
        with self.lock:
            self.stage(batch)
            self.execute(batch.shape, wait=False)
            return self.fetch(len(batch))

    def run_device(self, tensor) -> np.ndarray:
        """A torch CUDA tensor already in the engine's input format: bound without a host copy."""
        import torch

        with self.lock:
            tensor = tensor.contiguous()
            self.context.set_tensor_address(self.input_name, tensor.data_ptr())
            try:
                # The tensor was written on torch's current stream: wait for it first.
                torch.cuda.current_stream(tensor.device).synchronize()
                self.execute(tuple(tensor.shape), wait=False)
                return self.fetch(tensor.shape[0])
            finally:
                self.context.set_tensor_address(self.input_name, self._buffers[self.input_name][0])

    def compute_call(self, batch: np.ndarray):
        """The batch copied to the device once; the call runs the engine and waits for it."""
        with self.lock:
            self.stage(batch)

        def execute():
            with self.lock:
                self.execute(batch.shape)

        return execute

    def device_memory_bytes(self) -> int:
        """An estimate: activations + the engine's serialised size (resident weights and
        kernels) + the I/O buffers."""
        engine = self.engine
        activations = (engine.get_device_memory_size_v2()
                       if hasattr(engine, "get_device_memory_size_v2") else engine.device_memory_size)
        return int(activations) + int(self.manifest.engine_bytes) + self.io_bytes

    @property
    def io_bytes(self) -> int:
        """Bytes of the pinned host (and as many device) I/O buffers."""
        return sum(h.nbytes for _, _, h in self._buffers.values())

    def close(self) -> None:
        for device_ptr, host_ptr, _ in self._buffers.values():
            self.cuda.cudaFree(device_ptr)
            self.cuda.cudaFreeHost(host_ptr)
        self._buffers = {}
        if self.stream is not None:
            self.cuda.cudaStreamDestroy(self.stream)
            self.stream = None
        self.context = self.engine = None
