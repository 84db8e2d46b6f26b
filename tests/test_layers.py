"""Imports run one way: down the pipeline, never back up it.

Every `import reid_trt...` counts, at module level or inside a function (a lazy import is still a
dependency). A module may import its own layer and the layers below it.
"""

import ast
from pathlib import Path

import reid_trt

PACKAGE = Path(reid_trt.__file__).parent
# Bottom to top. core: what all stages share; data: images and datasets; then the pipeline's
# stages in order; runtime (Embedder) may use the models for .pth files; serving (Triton) runs
# and calls Embedders; integrations adapt Embedders and models to trackers; bench and the CLI on
# top.
LAYERS = ["core", "data", "models", "export", "calibration", "engine", "runtime", "serving",
          "integrations", "bench", "cli"]
TOP_LEVEL = {"demo": "cli"}  # reid_trt/demo.py drives every stage, as the CLI does
# The runtime consumes artifacts (graphs, engines, checkpoints) through core's readers: it sits
# beside the stages that make them, not on top of them, so apps never pull in export machinery.
NOT_BELOW = {"runtime": {"export", "calibration", "engine"},
             "serving": {"export", "calibration", "engine"},
             "integrations": {"export", "calibration", "engine"}}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "reid_trt":
        return None
    if len(parts) == 1:  # the package root, the facade over everything: the top
        return len(LAYERS) - 1
    name = TOP_LEVEL.get(parts[1], parts[1])
    assert name in LAYERS, f"reid_trt.{parts[1]} belongs to no layer: add it to LAYERS"
    return LAYERS.index(name)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # `from reid_trt import runtime` names a subpackage.
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names
                      if node.module == "reid_trt" and alias.name in LAYERS]
    return [(line, name) for line, name in found if name.split(".")[0] == "reid_trt"]


def upward_imports() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        own = layer_of(importer)
        if own is None:
            continue
        for line, imported in imports_of(path):
            theirs = layer_of(imported)
            if theirs is not None and (theirs > own or LAYERS[theirs] in
                                       NOT_BELOW.get(LAYERS[own], ())):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({LAYERS[own]}) imports "
                           f"{imported} ({LAYERS[theirs]})")
    return bad


def test_imports_only_point_down_the_layers():
    assert upward_imports() == []


def test_the_check_sees_lazy_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from reid_trt.runtime.embedder import Embedder\n")
    assert imports_of(sample) == [(2, "reid_trt.runtime.embedder")]
    assert layer_of("reid_trt.runtime.embedder") > layer_of("reid_trt.export.verify")


def test_core_imports_nothing_above_it():
    for path in (PACKAGE / "core").glob("*.py"):
        for _, imported in imports_of(path):
            assert imported.startswith("reid_trt.core"), (path, imported)
