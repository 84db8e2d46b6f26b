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
import site
import sys
from pathlib import Path


def _use_environment(paths):
    before = list(sys.path)
    for path in paths:
        if Path(path).is_dir():
            site.addsitedir(path)  # also runs its .pth files (editable installs)
    added = [p for p in sys.path if p not in before]
    sys.path[:] = added + before


_ENVIRONMENT = Path(__file__).with_name("environment.json")
if _ENVIRONMENT.is_file():
    _use_environment(json.loads(_ENVIRONMENT.read_text())["sys_path"])


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}

        from reid_trt.runtime.embedder import Embedder

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
            embeddings = self.embedder.embed(np.concatenate(batches))
        except Exception as e:  # every request of this batch hears why, in one line
            error = pb_utils.TritonError(" ".join(str(e).split()))
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        responses, start = [], 0
        for batch in batches:
            rows = np.ascontiguousarray(embeddings[start:start + len(batch)])
            start += len(batch)
            tensor = pb_utils.Tensor.from_dlpack(self.output, rows) if self.numpy2 else \
                pb_utils.Tensor(self.output, rows)
            responses.append(pb_utils.InferenceResponse([tensor]))
        return responses

    def finalize(self):
        self.embedder.close()
