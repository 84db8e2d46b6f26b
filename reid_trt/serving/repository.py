"""Triton model repositories: `DIR/NAME/config.pbtxt` and `DIR/NAME/1/<model>`, written whole or
not at all, from an engine (with its manifest) or a graph exported by reid-export."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sysconfig
import tempfile
from pathlib import Path

from reid_trt.core import defaults
from reid_trt.core.contract import contract_of
from reid_trt.core.engine_file import check_engine_file
from reid_trt.core.errors import OutputPathError, ReidTrtError, opt
from reid_trt.core.fileio import replace_together
from reid_trt.core.manifest import ENGINE_SUFFIXES, manifest_path, read_manifest
from reid_trt.core.onnxio import load_onnx
from reid_trt.core.options import MAX_BATCH, ConfigError
from reid_trt.serving.config import (
    MODEL_FILE_KEY,
    MODEL_FILES,
    ONNX_TYPES,
    TRT_TYPES,
    Kind,
    ModelSpec,
    ServeOptions,
    TensorSpec,
    build_config,
    check_config,
    parse_config,
    python_spec,
    to_text,
)

VERSION = "1"


def _dtype(table: dict, key, name: str, source) -> str:
    if key not in table:
        raise ReidTrtError(f"{source}: tensor '{name}' has a type ({key}) Triton models of "
                           "reid-trt do not use; re-export it with reid-export")
    return table[key]


def _one_each(inputs: list, outputs: list, source) -> None:
    if len(inputs) != 1 or len(outputs) != 1:
        raise ReidTrtError(f"{source} has {len(inputs)} inputs and {len(outputs)} outputs; an "
                           "OSNet graph from reid-export has one of each")


def engine_spec(engine: Path) -> ModelSpec:
    """What an engine's manifest says: I/O, profile, contract (no TensorRT needed)."""
    manifest = read_manifest(engine)
    check_engine_file(engine, manifest)
    inputs = [t for t in manifest.io if t.mode == "input"]
    outputs = [t for t in manifest.io if t.mode == "output"]
    _one_each(inputs, outputs, engine)
    spec = [TensorSpec(t.name, _dtype(TRT_TYPES, t.dtype, t.name, engine),
                       tuple(int(d) for d in t.shape[1:])) for t in (*inputs, *outputs)]
    profile = manifest.profile
    return ModelSpec((spec[0],), (spec[1],), profile.min, profile.opt, profile.max,
                     profile.max, manifest.preprocessing)


def onnx_spec(path: Path) -> ModelSpec:
    """What a graph says: I/O from its signature, the contract from its metadata."""
    model = load_onnx(path)
    contract = contract_of(model, str(path))
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    _one_each(inputs, list(graph.output), path)
    specs = []
    for value in (inputs[0], graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        if not dims or dims[0].dim_value:
            raise ReidTrtError(f"{path} has a static batch; Triton batches requests itself: "
                               "export it with a dynamic batch (reid-export onnx's default)")
        if any(not d.dim_value for d in dims[1:]):
            raise ReidTrtError(f"{path}: tensor '{value.name}' has a dynamic axis besides the "
                               "batch; re-export it with reid-export")
        elem = value.type.tensor_type.elem_type
        specs.append(TensorSpec(value.name, _dtype(ONNX_TYPES, elem, value.name, path),
                                tuple(d.dim_value for d in dims[1:])))
    return ModelSpec((specs[0],), (specs[1],), 1, min(16, defaults.EMBED_CHUNK), MAX_BATCH,
                     defaults.EMBED_CHUNK, contract)


def model_spec(model: Path) -> tuple[ModelSpec, bool]:
    """(spec, is_engine) of an engine or a graph."""
    model = Path(model)
    if model.is_dir() or not model.is_file():
        raise ReidTrtError(f"{model}: no such file; pass {opt('engine')} MODEL.plan or {opt('onnx')} "
                           "MODEL.onnx")
    if model.suffix.lower() in ENGINE_SUFFIXES:
        return engine_spec(model), True
    if model.suffix.lower() == ".onnx":
        return onnx_spec(model), False
    raise ReidTrtError(f"{model}: not an engine ({', '.join(ENGINE_SUFFIXES)}) or a graph (.onnx)")


def environment_paths() -> list[str]:
    """The folders this interpreter imports reid-trt and its dependencies from."""
    paths = [sysconfig.get_paths()[key] for key in ("purelib", "platlib")]
    return list(dict.fromkeys(str(Path(p).resolve()) for p in paths))


def check_repository_path(repo: Path, name: str) -> None:
    repo = Path(repo)
    if repo.exists() and not repo.is_dir():
        raise OutputPathError(f"{opt('repo')} {repo} is a file; pass a folder (created if missing)")
    parent = repo if repo.is_dir() else repo.parent
    if not parent.is_dir():
        raise OutputPathError(f"{opt('repo')} {repo}: {parent} does not exist; create it first")
    if (repo / name).exists() and not (repo / name).is_dir():
        raise OutputPathError(f"{repo / name} is a file; move it or pass another {opt('name')}")


def write_repository(repo: Path, model: Path, options: ServeOptions,
                     sys_path: list[str] | None = None) -> Path:
    """Writes `repo/<name>/` for `model` and returns that folder.

    Everything is written into a staging folder inside `repo`, checked (the config parsed with
    Triton's schema and compared with the model), and then renamed into place: an error leaves
    the repository as it was. An existing model of the same name is replaced whole.

    Args:
        repo: the model repository (created if missing; its parent must exist).
        model: an engine (.plan with its manifest) or a graph from reid-export (.onnx).
        options: name, kind (default: plan for an engine, onnx for a graph), batching and
            instances.
        sys_path: python kind only: where the server's model.py finds reid-trt (default: this
            interpreter's site-packages).
    """
    repo, model = Path(repo), Path(model)
    check_repository_path(repo, options.name)
    spec, is_engine = model_spec(model)
    if options.kind is None:
        options = dataclasses.replace(options, kind=Kind.PLAN if is_engine else Kind.ONNX)
    if options.kind == Kind.PLAN and not is_engine:
        raise ConfigError("kind", options.kind, f"{model} is a graph: serve it as 'onnx' or "
                          "'python', or build an engine first with reid-export trt")
    if options.kind == Kind.ONNX and is_engine:
        raise ConfigError("kind", options.kind, f"{model} is an engine: serve it as 'plan' or "
                          "'python'")
    model_file = MODEL_FILES[Kind.PLAN if is_engine else Kind.ONNX]
    extra = {}
    if options.kind == Kind.PYTHON:
        spec = python_spec(spec)
        extra = {MODEL_FILE_KEY: model_file}
    config = build_config(spec, options, is_engine, extra)
    text = to_text(config)
    check_config(parse_config(text), spec)  # what Triton will read, read back the same way

    created = not repo.exists()
    try:
        repo.mkdir(exist_ok=True)
        # Staged beside the repository, not in it: Triton loads every folder of a repository,
        # hidden ones too, so a half-written or old model must never sit there.
        staging = Path(tempfile.mkdtemp(prefix=f".{repo.name}.{options.name}.", suffix=".tmp",
                                        dir=repo.parent))
    except OSError as e:
        raise OutputPathError(f"{opt('repo')} {repo}: cannot write there ({e.strerror}); fix its "
                              "permissions or pass another folder") from None
    try:
        version = staging / VERSION
        version.mkdir()
        (staging / "config.pbtxt").write_text(text)
        shutil.copyfile(model, version / model_file)
        if is_engine:  # Triton ignores it; Embedder and the repository check read it
            shutil.copyfile(manifest_path(model), manifest_path(version / model_file))
        if options.kind == Kind.PYTHON:
            shutil.copyfile(Path(__file__).with_name("triton_model.py"), version / "model.py")
            paths = sys_path if sys_path is not None else environment_paths()
            root = str(Path(__file__).resolve().parents[2])  # the folder holding reid_trt/
            (version / "environment.json").write_text(json.dumps(
                {"sys_path": paths, "reid_trt_root": root}, indent=1))
        _make_readable(staging)
        replace_together([(staging, repo / options.name)], aside_in=repo.parent)
    except BaseException as e:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(repo, ignore_errors=True)
        if isinstance(e, OSError):
            raise OutputPathError(f"{opt('repo')} {repo}: cannot write the model there ({e.strerror}); "
                                  "fix its permissions or pass another folder") from None
        raise
    return repo / options.name


def _make_readable(folder: Path) -> None:
    """mkdtemp makes 0700 folders; a server running as another user must read the repository."""
    mask = os.umask(0)
    os.umask(mask)
    for path in (folder, *folder.rglob("*")):
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


def read_repository(repo: Path) -> dict[str, object]:
    """Every model's config in `repo`, parsed with Triton's schema; the ones reid-export wrote
    are checked against the model file beside them. Returns {name: ModelConfig}."""
    repo = Path(repo)
    if not repo.is_dir():
        raise ReidTrtError(f"{opt('repo')} {repo}: no such folder; write one with 'reid-export triton'")
    configs = {}
    for folder in sorted(p for p in repo.iterdir() if p.is_dir() and not p.name.startswith(".")):
        path = folder / "config.pbtxt"
        if not path.is_file():
            raise ReidTrtError(f"{folder} has no config.pbtxt; rewrite it with 'reid-export "
                               "triton' or move it out of the repository")
        config = parse_config(path.read_text(errors="replace"), path)
        _check_written_model(folder, config, path)
        configs[folder.name] = config
    if not configs:
        raise ReidTrtError(f"{opt('repo')} {repo} holds no models; write one with 'reid-export triton'")
    return configs


def _check_written_model(folder: Path, config, source: Path) -> None:
    if config.name and config.name != folder.name:
        raise ReidTrtError(f"{source} names the model '{config.name}' but lies in "
                           f"'{folder.name}'; make them equal")
    if config.backend == "python":
        file = config.parameters[MODEL_FILE_KEY].string_value \
            if MODEL_FILE_KEY in config.parameters else ""
        if not file:
            return  # a Python model reid-export did not write: Triton checks it
        spec = python_spec(model_spec(folder / VERSION / file)[0])
    elif config.platform in ("tensorrt_plan", "onnxruntime_onnx"):
        file = MODEL_FILES[Kind.PLAN if config.platform == "tensorrt_plan" else Kind.ONNX]
        if not (folder / VERSION / file).is_file() or config.platform == "tensorrt_plan" and \
                not manifest_path(folder / VERSION / file).is_file():
            return  # a model reid-export did not write (or an engine without its manifest)
        spec = model_spec(folder / VERSION / file)[0]
    else:
        return
    check_config(config, spec, source)
