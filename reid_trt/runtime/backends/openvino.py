"""OpenVINO backend: an exported .onnx or an IR (.xml + .bin from `reid-export openvino`) on
Intel CPUs, GPUs and NPUs."""

from __future__ import annotations

import queue
from dataclasses import replace
from pathlib import Path

import numpy as np

from reid_trt.core.batching import BatchLimits
from reid_trt.core.contract import contract_of
from reid_trt.core.errors import ReidTrtError
from reid_trt.core.machine import cpu_name, int8_kernels_unsafe
from reid_trt.core.onnxio import load_onnx
from reid_trt.core.openvino_ir import compile_for, ir_files, openvino, ov_device, read_contract
from reid_trt.core.options import InputFormat
from reid_trt.core.threads import RUNTIME, ThreadSettings


class OpenVINOBackend:
    name = "openvino"
    accepts_device_tensors = False

    def __init__(self, path: Path, device: str | None = None, preprocess_in_model: bool = True,
                 graph=None, threads: ThreadSettings = RUNTIME):
        """`device`: cpu, gpu, gpu:N, npu or auto (default cpu). `preprocess_in_model`: a graph
        that takes normalised float NCHW RGB is compiled to take the resized uint8 BGR NHWC
        batch instead (see _with_preprocessing); `contract` then says so, and the model's own
        contract is `model_contract`. `graph`: the .onnx at `path`, where the caller has loaded
        it already (its contract is read from it). `threads`: its worker threads (core/threads.py;
        OpenVINO has no spin setting: a ThreadSettings whose spin differs from RUNTIME's is
        refused by Embedder before it gets here)."""
        ov = openvino()
        target = ov_device(device)
        core = ov.Core()
        path = Path(path)
        if path.suffix.lower() == ".xml":
            ir_files(path)
            model = self._read(core, path)
            self.model_contract = read_contract(model, path)
        else:
            graph = load_onnx(path, "model") if graph is None else graph
            self.model_contract = contract_of(graph, str(path))
            model = self._read(core, path)
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ReidTrtError(f"{path} has {len(model.inputs)} inputs and {len(model.outputs)} "
                               "outputs; an OSNet model from reid-export has one of each")
        if self.model_contract.precision == "int8" and target == "CPU" and int8_kernels_unsafe():
            raise ReidTrtError(
                f"{path.name} is INT8, and OpenVINO's CPU INT8 kernels give wrong embeddings on a "
                f"CPU without VNNI or AMX like this {cpu_name()} (mean cosine 0.55 to FP32 "
                "measured); run it with backend='onnxruntime', or the FP32 graph on OpenVINO")
        self.contract = self.model_contract
        if preprocess_in_model and self.contract.input_format == InputFormat.FLOAT:
            model = _with_preprocessing(ov, model, self.contract)
            self.contract = replace(self.contract, input_format=InputFormat.UINT8_BGR)
        batch = model.inputs[0].get_partial_shape()[0]
        self.limits = BatchLimits(static=None if batch.is_dynamic else batch.get_length())
        # LATENCY: every core on each call, as Embedder's callers wait for each batch. The
        # precision hint keeps the graph's precision: OpenVINO's CPU plugin otherwise computes in
        # bf16 on CPUs that have it (min cosine 0.9988 to FP32 measured on an EPYC), its GPU
        # plugin in f16.
        hint = "f16" if self.model_contract.precision == "fp16" and target != "CPU" else "f32"
        self.compiled = compile_for(core, model, target, threads,
                                    {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": hint},
                                    path.name)
        self.device = f"openvino:{target}"
        # An infer request serves one call at a time: a pool of them serves concurrent callers.
        count = max(1, int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self.requests: queue.Queue = queue.Queue()
        for _ in range(count):
            self.requests.put(self.compiled.create_infer_request())
        element = model.inputs[0].get_element_type().get_type_name()
        self.input_dtype = {"f16": np.float16, "u8": np.uint8}.get(element, np.float32)

    @staticmethod
    def _read(core, path: Path):
        try:
            return core.read_model(str(path))
        except RuntimeError as e:
            reason = " ".join(str(e).split())[:200]
            raise ReidTrtError(f"OpenVINO cannot read {path} ({reason}); export it again with "
                               "reid-export") from None

    def run(self, batch: np.ndarray) -> np.ndarray:
        request = self.requests.get()
        try:
            request.infer({0: np.ascontiguousarray(batch, dtype=self.input_dtype)})
            return request.get_output_tensor(0).data.astype(np.float32)  # a copy: reused buffer
        finally:
            self.requests.put(request)

    def compute_call(self, batch: np.ndarray):
        """One inference on the batch already in the compiled model's input type."""
        batch = np.ascontiguousarray(batch, dtype=self.input_dtype)
        return lambda: self.run(batch)

    def device_memory_bytes(self) -> None:
        return None

    def run_device(self, tensor) -> np.ndarray:
        raise ReidTrtError("the OpenVINO backend takes host arrays; pass tensor.cpu().numpy()")

    def close(self) -> None:
        self.compiled = None
        self.requests = queue.Queue()


def _with_preprocessing(ov, model, contract):
    """The model behind OpenVINO's PrePostProcessor: resized uint8 BGR NHWC in; conversion to
    float, BGR->RGB, mean/std and the NCHW transpose compiled into the model, where the CPU plugin
    fuses them into the first convolution's input. Measured on the real osnet_x0_25, 2-core EPYC:
    batch 32 end to end 49.6 ms against 72.7 ms with NumPy normalisation (a quarter of the input
    bytes cross into the plugin); embeddings equal to the NumPy path's (cosine to torchreid's PIL
    path unchanged, tests/runtime/test_openvino.py). Resizing stays in OpenCV: a batch needs one
    size, and OpenVINO's linear resize does not antialias when shrinking as PIL's does."""
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")) \
        .set_color_format(ColorFormat.BGR)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    steps = ppp.input().preprocess().convert_element_type(ov.Type.f32)
    steps.convert_color(ColorFormat.RGB)
    steps.mean([255.0 * m for m in contract.mean]).scale([255.0 * s for s in contract.std])
    return ppp.build()
