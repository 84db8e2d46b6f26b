"""A model served by Triton against the in-process Embedder, under concurrent clients, in one run.

The real osnet_x0_25 (MSMT17) graph is exported, written as a Python-kind repository (Triton's
Python backend running Embedder with ONNX Runtime: the kind that serves on a CPU-only machine,
as nvidia-pytriton's server has no other backend) and served on loopback by `TritonServer`.
Then reid-bench measures, side by side: the in-process Embedder (the reference), the served
model over gRPC and over HTTP; single-caller latency per batch size, and N concurrent clients
each sending calls of a few crops (a frame's boxes) back to back. Triton's own statistics give
the batch sizes its dynamic batcher formed under that load (a second load run, counted alone).

Run: .venv/bin/python benchmarks/triton_serving.py [--clients 16] [--requests 50] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

DATA = Path(os.environ.get("REID_TRT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=50, help="calls per client")
    parser.add_argument("--crops-per-call", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    from reid_trt.bench.load import concurrent_load
    from reid_trt.bench.report import markdown
    from reid_trt.bench.run import BenchConfig, bench_crops, run_bench
    from reid_trt.export.api import export_onnx
    from reid_trt.serving.client import TritonEmbedder
    from reid_trt.serving.config import ServeOptions
    from reid_trt.serving.repository import write_repository
    from reid_trt.serving.server import TritonServer

    work = Path(tempfile.mkdtemp(prefix="triton-bench-"))
    graph = export_onnx(DATA / "weights" / "osnet_x0_25_msmt17.pth", work / "osnet.onnx").path
    write_repository(work / "repo", graph, ServeOptions(kind="python", max_batch=64))
    config = BenchConfig(batches=(1, 8, 32), runs=30, crops_dir=DATA / "reid" / "mot17-mini",
                         num_crops=64, clients=args.clients, client_requests=args.requests,
                         client_batch=args.crops_per_call, device="cpu")
    with TritonServer(work / "repo", http_port=0, grpc_port=0, metrics_port=0) as server:
        targets = [f"{server.grpc_url}/osnet", f"http://{server.http_url}/osnet"]
        report = run_bench([], [graph], None, config, served=targets)
        # The batches Triton formed under the concurrent load alone (statistics before/after).
        crops, _ = bench_crops(config)
        with TritonEmbedder(server.grpc_url, "osnet") as remote:
            remote.embed(crops[:args.crops_per_call])  # the load's warm-up call, not counted
            before = remote.statistics()
            concurrent_load(remote, crops, args.clients, args.requests, args.crops_per_call)
            after = remote.statistics()
    batches = {b: n - before.get(b, 0) for b, n in after.items() if n > before.get(b, 0)}
    report.extra["triton_batches"] = {str(b): n for b, n in sorted(batches.items())}
    report.command = (f"python benchmarks/triton_serving.py --clients {args.clients} "
                         f"--requests {args.requests} --crops-per-call {args.crops_per_call}")
    executions = sum(batches.values())
    served_crops = sum(b * n for b, n in batches.items())
    text = markdown(report) + (
        f"\nTriton's dynamic batcher under {args.clients} gRPC clients x {args.requests} calls "
        f"of {args.crops_per_call} crops: {executions} model executions for {served_crops} crops "
        f"({args.clients * args.requests * args.crops_per_call} from the clients, the rest the "
        "load's one warm-up call) "
        f"(mean {served_crops / executions:.1f} crops per execution, largest {max(batches)}); "
        f"executions by batch size: {report.extra['triton_batches']}.\n")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "triton_serving_cpu.md").write_text(text)
    (args.out / "triton_serving_cpu.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
