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
from packaging.version import Version

from reid_trt.engine.compat import Trt, collecting_logger, load_trt
from reid_trt.engine.manifest import Manifest, read_manifest
from reid_trt.errors import MissingDependencyError, ReidTrtError
from reid_trt.fileio import sha256_file


def _rebuild(path: Path) -> str:
    return (f"rebuild it on this machine: reid-export trt --onnx MODEL.onnx -o {path} "
            "(the .onnx it was built from)")


def check_engine(path: Path, manifest: Manifest, trt: Trt,
                 device_cc: tuple[int, int] | None = None) -> None:
    """Refuses an engine that this machine's TensorRT or GPU cannot run, before loading it."""
    if sha256_file(path) != manifest.engine_sha256:
        raise ReidTrtError(f"{path} does not match its manifest (sha256 differs: replaced or "
                           f"truncated?); {_rebuild(path)}")
    if trt.flavour != manifest.trt_flavour:
        raise ReidTrtError(f"{path} was built by {manifest.trt_flavour} {manifest.trt_version}, "
                           f"but this machine runs {trt.label}; {_rebuild(path)}")
    if Version(trt.version).release[:3] != Version(manifest.trt_version).release[:3]:
        raise ReidTrtError(f"{path} was built by TensorRT {manifest.trt_version}, this machine "
                           f"has {trt.version}; engines do not move between versions: "
                           f"{_rebuild(path)}")
    explicit = re.findall(r"sm(\d+)", manifest.targets)
    if device_cc is not None and explicit:
        sm = f"{device_cc[0]}{device_cc[1]}"
        if sm not in explicit:
            raise ReidTrtError(f"{path} targets {manifest.targets}, but this GPU is sm{sm}; "
                               f"{_rebuild(path)} --compute-capability sm{sm}")


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

    def __init__(self, path: Path, device: str):
        from reid_trt.runtime.planning import device_index

        path = Path(path)
        if not path.is_file():
            raise ReidTrtError(f"{path}: no such file; pass an engine built by 'reid-export trt'")
        self.manifest = read_manifest(path)
        self.contract = self.manifest.preprocessing
        if device == "cpu":
            raise ReidTrtError(f"{path} is a TensorRT engine: it runs on a GPU (device='cuda:N'); "
                               "on the CPU use the .onnx it was built from")
        self.trt = load_trt(self.manifest.trt_flavour)
        self.cuda = cudart = _cudart()
        index = device_index(device)
        err, count = cudart.cudaGetDeviceCount()
        if int(err) != 0 or count == 0:
            reason = cudart.cudaGetErrorName(err)[1].decode() if int(err) else "0 devices"
            raise ReidTrtError(f"{path}: no usable CUDA device here ({reason}); TensorRT engines "
                               "need an NVIDIA GPU and driver; on the CPU use the .onnx")
        if index >= count:
            raise ReidTrtError(f"device '{device}': this machine has {count} CUDA devices")
        props = self._call(cudart.cudaGetDeviceProperties(index), "device properties")
        check_engine(path, self.manifest, self.trt, (props.major, props.minor))
        self._call(cudart.cudaSetDevice(index), "cudaSetDevice")
        self.device = device

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
        profile = self.manifest.profile
        self.min_batch, self.max_batch = profile["min"], profile["max"]
        self.static_batch = profile["max"] if profile["min"] == profile["max"] else None
        self._buffers = {}
        for name in (self.input_name, self.output_name):
            dtype = np.dtype(self.trt.module.nptype(self.engine.get_tensor_dtype(name)))
            shape = [self.max_batch, *self.engine.get_tensor_shape(name)[1:]]
            nbytes = int(np.prod(shape)) * dtype.itemsize
            device_ptr = self._call(cudart.cudaMalloc(nbytes), "cudaMalloc")
            host_ptr = self._call(cudart.cudaMallocHost(nbytes), "cudaMallocHost")
            host = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(host_ptr))
            self._buffers[name] = (device_ptr, host_ptr, host.view(dtype).reshape(shape))
            self.context.set_tensor_address(name, device_ptr)

    def _call(self, result, what: str):
        err, *values = result
        if int(err) != 0:
            name = self.cuda.cudaGetErrorName(err)[1].decode() if hasattr(self, "cuda") else err
            raise ReidTrtError(f"CUDA {what} failed: {name}")
        return values[0] if len(values) == 1 else values

    def run(self, batch: np.ndarray) -> np.ndarray:
        cudart = self.cuda
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        n = len(batch)
        with self.lock:
            d_in, h_in_ptr, h_in = self._buffers[self.input_name]
            d_out, h_out_ptr, h_out = self._buffers[self.output_name]
            np.copyto(h_in[:n], batch, casting="same_kind")
            self.context.set_input_shape(self.input_name, batch.shape)
            self._call(cudart.cudaMemcpyAsync(d_in, h_in_ptr, h_in[:n].nbytes, h2d, self.stream),
                       "copy to device")
            if not self.context.execute_async_v3(int(self.stream)):
                raise ReidTrtError(f"{self.trt.label}: execution failed for batch {batch.shape}")
            self._call(cudart.cudaMemcpyAsync(h_out_ptr, d_out, h_out[:n].nbytes, d2h,
                                              self.stream), "copy to host")
            self._call(cudart.cudaStreamSynchronize(self.stream), "synchronize")
            return h_out[:n].astype(np.float32, copy=True)

    def run_device(self, tensor) -> np.ndarray:
        """A torch CUDA tensor already in the engine's input format: bound without a host copy."""
        n = tensor.shape[0]
        with self.lock:
            tensor = tensor.contiguous()
            d_out, h_out_ptr, h_out = self._buffers[self.output_name]
            self.context.set_input_shape(self.input_name, tuple(tensor.shape))
            self.context.set_tensor_address(self.input_name, tensor.data_ptr())
            try:
                # The tensor was written on torch's current stream: wait for it first.
                import torch

                torch.cuda.current_stream(tensor.device).synchronize()
                if not self.context.execute_async_v3(int(self.stream)):
                    raise ReidTrtError(f"{self.trt.label}: execution failed for {tuple(tensor.shape)}")
                kind = self.cuda.cudaMemcpyKind.cudaMemcpyDeviceToHost
                self._call(self.cuda.cudaMemcpyAsync(h_out_ptr, d_out, h_out[:n].nbytes, kind,
                                                     self.stream), "copy to host")
                self._call(self.cuda.cudaStreamSynchronize(self.stream), "synchronize")
            finally:
                self.context.set_tensor_address(self.input_name, self._buffers[self.input_name][0])
            return h_out[:n].astype(np.float32, copy=True)

    def compute_fn(self, batch: np.ndarray):
        """Stages `batch` on the device once; the returned call runs only the engine (plus one
        stream synchronisation), for timing compute without the copies."""
        with self.lock:
            d_in, h_in_ptr, h_in = self._buffers[self.input_name]
            np.copyto(h_in[:len(batch)], batch, casting="same_kind")
            self._call(self.cuda.cudaMemcpy(d_in, h_in_ptr, h_in[:len(batch)].nbytes,
                                            self.cuda.cudaMemcpyKind.cudaMemcpyHostToDevice),
                       "copy to device")

        def execute():
            with self.lock:
                self.context.set_input_shape(self.input_name, batch.shape)
                if not self.context.execute_async_v3(int(self.stream)):
                    raise ReidTrtError(f"{self.trt.label}: execution failed for {batch.shape}")
                self._call(self.cuda.cudaStreamSynchronize(self.stream), "synchronize")

        return execute

    def device_memory_bytes(self) -> int | None:
        """An estimate: the engine's activation memory, its serialised size (the resident weights
        and kernels) and our I/O buffers."""
        engine = self.engine
        activations = (engine.get_device_memory_size_v2() if hasattr(engine, "get_device_memory_size_v2")
                       else engine.device_memory_size)
        io = sum(h.nbytes for _, _, h in self._buffers.values())
        return int(activations) + int(self.manifest.engine_bytes) + io

    def close(self) -> None:
        if getattr(self, "_buffers", None):
            for device_ptr, host_ptr, _ in self._buffers.values():
                self.cuda.cudaFree(device_ptr)
                self.cuda.cudaFreeHost(host_ptr)
            self._buffers = {}
            self.cuda.cudaStreamDestroy(self.stream)
        self.context = self.engine = None
