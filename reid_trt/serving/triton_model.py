"""model.py of a Python-kind Triton model written by `reid-export triton --kind python`.

Triton's Python backend runs this file in its own interpreter (the stub, on the system's
libpython), which knows nothing of the environment reid-trt is installed in, and imports numpy
right after this module. So, on import, the folders that environment.json (beside this file)
names are put first on sys.path; folders that do not exist are skipped (the repository copied
into NVIDIA's Triton container, where the stub's own packages serve).

Inputs are read by DLPack. Outputs are made by DLPack under numpy 2 and by the stub's numpy
conversion under numpy 1, because each path is broken on the other side: the conversion reads
numpy 1's array-descriptor layout (numpy 2 moved the item size, so the output arrives empty),
and numpy 1's DLPack capsule deleter rejects the name the stub gives a consumed capsule (the
stub dies).
"""

import json
import os
import site
import sys
from pathlib import Path

# Nothing is written into anyone's source tree (bytecode caches included).
sys.dont_write_bytecode = True


def _use_environment(paths, package_root):
    """The environment's folders first, the folder of the reid_trt that wrote this repository
    first of all; the working directory (which the stub puts on sys.path) is dropped, so a
    reid_trt/ folder where the server was started cannot stand in for the installed one."""
    cwd = os.getcwd()
    before = [p for p in sys.path if p not in ("", ".", cwd) or p == package_root]
    for path in paths:
        if Path(path).is_dir():
            site.addsitedir(path)  # also runs its .pth files (editable installs)
    added = [p for p in sys.path if p not in before and p not in ("", ".", cwd)]
    first = [package_root] if package_root and Path(package_root).is_dir() else []
    sys.path[:] = list(dict.fromkeys(first + added + before))


_ENVIRONMENT = Path(__file__).with_name("environment.json")
_PACKAGE_ROOT = None
if _ENVIRONMENT.is_file():
    _settings = json.loads(_ENVIRONMENT.read_text())
    _PACKAGE_ROOT = _settings.get("reid_trt_root")
    _use_environment(_settings["sys_path"], _PACKAGE_ROOT)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}

        from reid_trt.runtime import embedder
        from reid_trt.runtime.embedder import Embedder

        found = Path(embedder.__file__).resolve().parents[2]  # the folder holding reid_trt/
        if _PACKAGE_ROOT and Path(_PACKAGE_ROOT).is_dir() and found != Path(_PACKAGE_ROOT):
            raise RuntimeError(f"this model was written for the reid_trt in {_PACKAGE_ROOT}, but "
                               f"{found} was imported; restart the server from another folder")

        folder = Path(args["model_repository"]) / args["model_version"]
        device = None  # Embedder's default: cuda:0 when present, else the CPU
        if args.get("model_instance_kind") == "GPU":
            device = f"cuda:{args['model_instance_device_id']}"
        self.embedder = Embedder(folder / params["reid_trt.model_file"], device=device,
                                 max_batch=config["max_batch_size"])
        import numpy as np

        self.numpy2 = int(np.__version__.split(".")[0]) >= 2
        self.input = config["input"][0]["name"]
        self.output = config["output"][0]["name"]

    def execute(self, requests):
        import numpy as np
        import triton_python_backend_utils as pb_utils

        # The dynamic batcher hands over several requests at once: one Embedder call for all.
        batches = [np.from_dlpack(pb_utils.get_input_tensor_by_name(r, self.input))
                   for r in requests]
        try:
            embeddings = self.embed(np.concatenate(batches))
        except Exception:
            # One request may be what fails: embed each alone, so only its caller hears why
            # and the requests batched with it still get their rows.
            return [self.respond(batch, pb_utils) for batch in batches]
        responses, start = [], 0
        for batch in batches:
            rows = np.ascontiguousarray(embeddings[start:start + len(batch)])
            start += len(batch)
            responses.append(self.response(rows, pb_utils))
        return responses

    def embed(self, batch):
        return self.embedder.embed(batch)

    def respond(self, batch, pb_utils):
        import numpy as np

        try:
            return self.response(np.ascontiguousarray(self.embed(batch)), pb_utils)
        except Exception as e:  # the caller hears why, in one line
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(" ".join(str(e).split())))

    def response(self, rows, pb_utils):
        tensor = pb_utils.Tensor.from_dlpack(self.output, rows) if self.numpy2 else \
            pb_utils.Tensor(self.output, rows)
        return pb_utils.InferenceResponse([tensor])

    def finalize(self):
        self.embedder.close()
