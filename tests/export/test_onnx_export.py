"""Exported graphs: clean structure, parity with PyTorch, preprocessing and normalisation inside."""

import fcntl
import os
import threading
import time
from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch

from reid_trt.core.contract import Contract, contract_of
from reid_trt.core.errors import ExportError, ReidTrtError, VerificationError
from reid_trt.core.onnxio import ort_session
from reid_trt.core.preprocess import graph_input, preprocess_numpy
from reid_trt.data.synthetic import person_like_crops
from reid_trt.export.api import ExportConfig, export_onnx
from reid_trt.export.checks import batch_dim, grouped_conv_count, op_counts
from reid_trt.export.verify import ParityReport, require_parity
from reid_trt.models import VARIANTS
from reid_trt.models.checkpoint import load_model
from tests.conftest import SMALL

pytestmark = pytest.mark.slow  # every variant exported and verified (about 4 minutes)


def elem_type(value) -> int:
    return value.type.tensor_type.elem_type


# Every kind of OSNet the exporter meets: each family at both ends of its width table, and IBN.
# The widths between are the same modules with channel counts between (models/__init__.py), and
# tests/models checks every variant against torchreid's own code; a trace costs 20-30 s here.
EXPORTED = ["osnet_x0_25", "osnet_x1_0", "osnet_ibn_x1_0", "osnet_ain_x0_25", "osnet_ain_x1_0"]


def test_the_exported_variants_cover_every_kind():
    kinds = {(v.family, v.ibn) for v in VARIANTS.values()}
    assert {(VARIANTS[v].family, VARIANTS[v].ibn) for v in EXPORTED} == kinds
    for family in ("osnet", "osnet_ain"):
        widths = [v.channels for v in VARIANTS.values() if v.family == family and not v.ibn]
        assert {VARIANTS[v].channels for v in EXPORTED if VARIANTS[v].family == family} == {
            min(widths), max(widths)}


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("variant", EXPORTED)
def test_every_kind_of_variant_exports_clean_and_verifies(variant, precision,
                                                          generated_checkpoint, tmp_path):
    # The default input size: osnet_ain_x1_0's trace is then the one tests/conftest.py's graphs
    # made (the run's cache folder keeps it).
    config = ExportConfig(precision=precision)
    result = export_onnx(generated_checkpoint(variant), tmp_path / "m.onnx", config)

    assert result.variant == variant
    assert result.parity.min_cosine >= {"fp32": 0.99999, "fp16": 0.999}[precision]
    model = onnx.load(result.path)
    counts = op_counts(model)
    assert counts["BatchNormalization"] == 0
    assert counts["InstanceNormalization"] == VARIANTS[variant].instance_norms
    assert not {"Shape", "Gather", "Concat", "Reshape"} & set(counts)
    # 3 streams x (1+2+3+4) light convs per block, 6 blocks: all depthwise.
    assert grouped_conv_count(model) == 60
    assert batch_dim(model) == "batch"
    assert elem_type(model.graph.input[0]) == onnx.TensorProto.FLOAT
    if precision == "fp16":
        conv = next(n for n in model.graph.node if n.op_type == "Conv")
        weights = {i.name: i for i in model.graph.initializer}
        assert weights[conv.input[1]].data_type == onnx.TensorProto.FLOAT16
        # InstanceNorm computes in FP32 (TensorRT issue 2691): its scale is an FP32 tensor.
        for node in (n for n in model.graph.node if n.op_type == "InstanceNormalization"):
            assert weights[node.input[1]].data_type == onnx.TensorProto.FLOAT


def test_metadata_carries_the_contract(generated_checkpoint, tmp_path):
    weights = generated_checkpoint("osnet_ain_x0_25")
    config = ExportConfig(precision="fp16", input_format="uint8-bgr", normalize=True)
    result = export_onnx(weights, tmp_path / "m.onnx", config)
    contract = contract_of(onnx.load(result.path))
    assert contract == result.contract
    assert (contract.variant, contract.layout, contract.colour_order) == (
        "osnet_ain_x0_25", "NHWC", "BGR")
    assert contract.normalized and contract.precision == "fp16"
    assert contract.mean == (0.485, 0.456, 0.406) and contract.embedding_dim == 512
    import hashlib
    assert contract.weights_sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    meta = {p.key: p.value for p in onnx.load(result.path).metadata_props}
    assert meta["reid_trt.reid_trt_version"] == '"0.1.0"'


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_uint8_bgr_input_and_normalize_equal_outside_preprocessing(real_weights, market_crops,
                                                                   precision, tmp_path):
    """The baked-in graph on raw crops == PyTorch on crops preprocessed outside, normalised."""
    weights = real_weights["market1501"]
    config = ExportConfig(precision=precision, input_format="uint8-bgr", normalize=True)
    result = export_onnx(weights, tmp_path / "m.onnx", config, verify_crops=market_crops)
    session = ort_session(str(result.path))
    inp = session.get_inputs()[0]
    assert inp.type == "tensor(uint8)" and inp.shape[1:] == [256, 128, 3]
    got = session.run(None, {inp.name: graph_input(market_crops, result.contract)})[0]

    model = load_model(weights).model
    with torch.no_grad():
        want = model(torch.from_numpy(preprocess_numpy(market_crops)))
    want = torch.nn.functional.normalize(want, dim=1).numpy()
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-3)
    cos = (got * want).sum(axis=1)
    assert cos.min() >= (0.99999 if precision == "fp32" else 0.999)


def test_real_weights_verify_on_real_crops(real_weights, market_crops, tmp_path):
    for name, weights in real_weights.items():
        result = export_onnx(weights, tmp_path / f"{name}.onnx", verify_crops=market_crops)
        assert result.parity.crops == 9 and result.parity.min_cosine >= 0.99999


def test_static_batch_and_fp16_io(generated_checkpoint, tmp_path):
    config = ExportConfig(precision="fp16", io_dtype="fp16", batch=4, height=SMALL[0],
                          width=SMALL[1])
    result = export_onnx(generated_checkpoint("osnet_x0_25"), tmp_path / "m.onnx", config)
    model = onnx.load(result.path)
    assert batch_dim(model) == 4
    assert elem_type(model.graph.input[0]) == onnx.TensorProto.FLOAT16
    assert elem_type(model.graph.output[0]) == onnx.TensorProto.FLOAT16
    assert result.parity.crops == 8  # run as two batches of 4


@pytest.mark.parametrize("options, message", [
    ({"precision": "int8"}, "precision='int8': export writes fp32 or fp16"),
    ({"io_dtype": "fp16"}, "io_dtype='fp16': needs precision fp16"),
    ({"input_format": "rgb"}, "input_format='rgb': choose one of float, uint8-bgr"),
    ({"height": 250}, "input_size='250x128': OSNet needs multiples of 32"),
    ({"batch": 0}, "batch=0: must be between 1 and 4096"),
    ({"variant": "osnet_x9"}, "unknown variant 'osnet_x9'"),
])
def test_bad_options_write_nothing(generated_checkpoint, tmp_path, options, message):
    out = tmp_path / "m.onnx"
    with pytest.raises(ReidTrtError, match=message):
        export_onnx(generated_checkpoint("osnet_x0_25"), out, ExportConfig(**options))
    assert list(tmp_path.iterdir()) == []


def test_failed_verification_writes_nothing(generated_checkpoint, tmp_path):
    """Real disagreement: an fc scaled so its FP16 outputs overflow to inf."""
    checkpoint = torch.load(generated_checkpoint("osnet_x0_25"), weights_only=True)
    checkpoint["state_dict"]["fc.0.weight"] *= 1e5
    weights = tmp_path / "overflow.pth"
    torch.save(checkpoint, weights)
    out = tmp_path / "m.onnx"
    with pytest.raises(VerificationError, match="disagrees with PyTorch.*nothing was written"):
        export_onnx(weights, out, ExportConfig(precision="fp16", height=SMALL[0], width=SMALL[1]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overflow.pth"]
    # The same weights are fine in FP32.
    assert export_onnx(weights, out, ExportConfig(height=SMALL[0], width=SMALL[1])).path == out


def test_require_parity_passes_good_reports():
    good = ParityReport(crops=8, max_abs_diff=1e-6, min_cosine=1.0, mean_cosine=1.0,
                        tolerance=0.99999)
    require_parity(good, "x")  # does not raise
    assert good.to_dict()["passed"] is True


def test_graph_check_rejects_unfolded_batchnorm():
    from reid_trt.export.checks import check_graph

    node = onnx.helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 3, 8, 8])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 3, 8, 8])
    model = onnx.helper.make_model(onnx.helper.make_graph([node], "g", [x], [y]))
    with pytest.raises(ExportError, match="1 BatchNormalization nodes left unfolded"):
        check_graph(model, instance_norms=0, dynamic_batch=True)


@pytest.mark.parametrize("nodes, constant, freed", [
    ([("Add", ["x", "c"], ["y"])], (1, 3), True),  # per-row arithmetic: the axis is freed
    ([("Add", ["x", "c"], ["y"])], (2, 3), False),  # a constant as wide as the traced batch
    ([("Reshape", ["x", "c"], ["y"])], None, False),  # shape arithmetic
])
def test_a_trace_is_freed_of_its_batch_only_where_no_node_depends_on_it(nodes, constant, freed):
    """A dynamic-batch export is traced at a static batch of 2 and its batch axis freed after
    (onnx_export.with_free_batch); a graph where a node depends on that batch is not freed (the
    exporter then traces with a symbolic batch)."""
    from onnx import numpy_helper

    from reid_trt.export.onnx_export import with_free_batch

    value = np.ones(constant, np.float32) if constant else np.array([-1, 3], np.int64)
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 3])
    graph = onnx.helper.make_graph([onnx.helper.make_node(*n) for n in nodes], "g", [x], [y],
                                   [numpy_helper.from_array(value, "c")])
    model = onnx.helper.make_model(graph)
    got = with_free_batch(model)
    assert (got is not None) == freed
    if freed:
        assert batch_dim(got) == "batch"
        assert got.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        out = ort_session(got).run(None, {"x": np.zeros((5, 3), np.float32)})[0]
        assert out.shape == (5, 3) and (out == 1).all()
    assert batch_dim(model) == 2  # the traced graph itself is left as it was


def test_contract_round_trip():
    c = Contract("osnet_x1_0", input_format="uint8-bgr", normalized=True, precision="fp16")
    assert Contract.from_metadata(c.to_metadata()) == c
    with pytest.raises(ReidTrtError, match="no reid-trt metadata"):
        Contract.from_metadata({"other": "1"}, "m.onnx")


def test_synthetic_crops_are_reproducible_and_varied():
    a, b = person_like_crops(4, seed=1), person_like_crops(4, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert a[0].shape == (256, 128, 3) and a[0].dtype == np.uint8
    assert not np.array_equal(a[0], a[1]) and a[0].std() > 20


def test_a_checkpoint_is_traced_once_per_machine(generated_checkpoint, tmp_path, monkeypatch):
    """fp32 then fp16 of the same checkpoint reuse the torch trace, in another process too (the
    trace is kept in the cache folder), and so do its other input formats and batches; a damaged
    kept trace, or the same weights changed, trace again; a cache folder that cannot be written
    costs only the trace; every graph is still verified against PyTorch."""
    from reid_trt.core.defaults import CACHE_ENV
    from reid_trt.export import onnx_export, trace_cache

    traced = []
    real = onnx_export._torch_export
    monkeypatch.setattr(onnx_export, "_torch_export",
                        lambda *a: traced.append(a[1].weights_sha256) or real(*a))

    def new_process():
        monkeypatch.setattr(trace_cache, "_TRACES", type(trace_cache._TRACES)())

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    new_process()
    weights = generated_checkpoint("osnet_x0_25")
    small = ExportConfig(height=SMALL[0], width=SMALL[1])
    a = export_onnx(weights, tmp_path / "a.onnx", small)
    sha = a.contract.weights_sha256
    assert traced == [sha] and len(list((tmp_path / "cache" / "traces").glob("*.onnx"))) == 1
    # Another process that meets the trace being made waits for it, then reads it.
    key = trace_cache.trace_key(a.contract, small.opset)
    kept = trace_cache.disk_path(key)
    data = kept.read_bytes()
    kept.unlink()  # not made yet: the "tracing" process below holds the lock
    lock = open(kept.with_suffix(".lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    new_process()
    done = []
    waiting = threading.Thread(target=lambda: done.append(export_onnx(
        weights, tmp_path / "b.onnx", replace(small, precision="fp16"))))
    waiting.start()
    waiting.join(timeout=2)
    assert waiting.is_alive() and not done  # held by the "tracing" process
    kept.write_bytes(data)  # which writes the trace, then lets go
    lock.close()
    waiting.join()
    b = done[0]
    assert traced == [sha]  # read back from the cache folder
    assert b.parity.min_cosine >= 0.999 and a.parity.min_cosine >= 0.99999
    # Every input format, the L2 normalisation and a static batch are added to that same trace
    # (onnx_export.with_contract); each graph is still verified against PyTorch.
    for k, (fmt, normalize, batch) in enumerate([("uint8-bgr", True, 3),
                                                 ("float-rgb255", False, None),
                                                 ("float-rgb01", True, 1)]):
        made = export_onnx(weights, tmp_path / f"v{k}.onnx",
                           replace(small, input_format=fmt, normalize=normalize, batch=batch))
        assert made.parity.min_cosine >= 0.99999 and made.contract.input_format == fmt
        assert batch_dim(onnx.load(made.path)) == (batch or "batch")
    assert traced == [sha]
    for kept in (tmp_path / "cache" / "traces").glob("*.onnx"):
        kept.write_bytes(kept.read_bytes()[:1000])
    new_process()
    again = export_onnx(weights, tmp_path / "c.onnx", small)
    assert traced == [sha, sha] and again.parity.min_cosine >= 0.99999
    assert (tmp_path / "c.onnx").read_bytes() == (tmp_path / "a.onnx").read_bytes()

    checkpoint = torch.load(weights, weights_only=True)
    checkpoint["state_dict"]["fc.0.weight"] *= 2
    torch.save(checkpoint, tmp_path / "other.pth")
    (tmp_path / "a file").write_text("")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "a file" / "cache"))  # cannot be made
    other = export_onnx(tmp_path / "other.pth", tmp_path / "d.onnx", small)
    assert len(traced) == 3 and traced[2] != sha and other.parity.min_cosine >= 0.99999


def test_a_held_lock_is_waited_for_in_words_and_not_forever(tmp_path, monkeypatch, caplog):
    """A trace on disk is read whoever holds its lock; a trace being made is waited for, said
    in one line, and given up after a bound with an error naming the lock."""
    from reid_trt.core.defaults import CACHE_ENV
    from reid_trt.export import trace_cache

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    key = ("trace", "held")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    model = onnx.helper.make_model(graph)
    path = trace_cache.disk_path(key)
    path.parent.mkdir(parents=True)
    lock = open(path.with_suffix(".lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        monkeypatch.setattr(trace_cache, "LOCK_WAIT_S", 0.5)
        start = time.monotonic()
        with pytest.raises(ExportError, match=r"^another process has been tracing the same "
                                              r"checkpoint for \d+ s \(it holds .*\.lock\)"):
            trace_cache.cached_trace(key, lambda: model)
        assert time.monotonic() - start < 5
        assert "waiting for another process tracing the same checkpoint" in caplog.text
        assert not path.exists()  # nothing written
        path.write_bytes(model.SerializeToString())
        got = trace_cache.cached_trace(key, lambda: pytest.fail("traced again"))
        assert [n.op_type for n in got.graph.node] == ["Identity"]  # read at once, lock held
    finally:
        lock.close()


def test_a_kept_trace_wrong_for_its_key_is_discarded(generated_checkpoint, tmp_path, monkeypatch,
                                                     caplog):
    """A kept trace whose weights are not its checkpoint's (another file under its key): the
    export traces again, writes a verified graph, says which file it discarded, and keeps the
    right trace in its place."""
    from onnx import numpy_helper

    from reid_trt.core.defaults import CACHE_ENV
    from reid_trt.export import trace_cache

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(trace_cache, "_TRACES", type(trace_cache._TRACES)())
    small = ExportConfig(height=SMALL[0], width=SMALL[1])
    weights = generated_checkpoint("osnet_x0_25")
    a = export_onnx(weights, tmp_path / "a.onnx", small)
    path = trace_cache.disk_path(trace_cache.trace_key(a.contract, small.opset))
    wrong = onnx.load_from_string(path.read_bytes())
    init = max(wrong.graph.initializer, key=lambda t: np.prod(t.dims))
    values = numpy_helper.to_array(init)
    noise = np.random.default_rng(0).normal(0, values.std(), values.shape).astype(values.dtype)
    init.CopyFrom(numpy_helper.from_array(values + noise, init.name))
    path.write_bytes(wrong.SerializeToString())
    monkeypatch.setattr(trace_cache, "_TRACES", type(trace_cache._TRACES)())  # another process
    again = export_onnx(weights, tmp_path / "again.onnx", small)
    assert again.parity.min_cosine >= 0.99999
    assert f"discarded the kept trace {path}" in caplog.text
    assert path.read_bytes() != wrong.SerializeToString()  # replaced by the right trace
    assert (tmp_path / "again.onnx").read_bytes() == (tmp_path / "a.onnx").read_bytes()


def test_kept_traces_are_evicted_least_recently_used_first(tmp_path, monkeypatch):
    """Over the limit, the trace used longest ago goes first, with its lock file; one just read
    counts as used."""
    from onnx import helper, numpy_helper

    from reid_trt.core.defaults import CACHE_ENV
    from reid_trt.export import trace_cache

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    weights = numpy_helper.from_array(np.zeros(250, np.float32), "w")
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [250])],
                              [weights])
    data = helper.make_model(graph).SerializeToString()
    monkeypatch.setattr(trace_cache, "KEEP_DISK_TRACE_BYTES", int(2.5 * len(data)))
    keys = [("trace", k) for k in range(3)]
    paths = [trace_cache.disk_path(k) for k in keys]
    for k, key in enumerate(keys[:2]):
        with trace_cache.tracing(key):
            trace_cache.keep(key, data)
        os.utime(paths[k], (1000 + k, 1000 + k))
    assert trace_cache.read_kept(keys[0]) is not None  # now the most recently used
    with trace_cache.tracing(keys[2]):
        trace_cache.keep(keys[2], data)
    assert [p.exists() for p in paths] == [True, False, True]
    assert [p.with_suffix(".lock").exists() for p in paths] == [True, False, True]
