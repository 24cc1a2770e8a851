"""a07's reference Triton kernel against torch's F.scaled_dot_product_attention on one GPU.

Prepared for a session that has a CUDA device (none was lent when it was written). Times the
forward pass of `flash_attention_triton_forward` (solutions/a07_flash_attention) and of
`F.scaled_dot_product_attention` in float16 and bfloat16, N = 1k..16k, d = 64 and 128,
causal and not, and records FLOP/s and their ratio, with the device name, as JSON:

    .venv/bin/pip install triton==3.7.1          # plus a CUDA build of torch==2.13.0
    .venv/bin/python bench/flash_attention_gpu.py --out bench/results/a07_flash_attention_gpu.json

FLOPs of one forward: 4 * B * H * N * N * d (two matmuls of 2 N^2 d each), halved when causal.
Before timing, each configuration's output is checked against sdpa (max abs error recorded).
Exits 2 without CUDA or triton, naming what is missing.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_reference():
    path = ROOT / "solutions" / "a07_flash_attention" / "flash_attention.py"
    spec = importlib.util.spec_from_file_location("a07_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_ms(torch, function, repeats: int, warmup: int) -> float:
    """Median milliseconds of `function()` measured with CUDA events."""
    for _ in range(warmup):
        function()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        function()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[len(times) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "a07_flash_attention_gpu.json")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384])
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--dtypes", nargs="+", default=["float16", "bfloat16"])
    parser.add_argument("--tokens", type=int, default=16384, help="B * N is kept at this many tokens (B >= 1)")
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)

    import torch
    import torch.nn.functional as F

    if not torch.cuda.is_available():
        print("bench/flash_attention_gpu.py: no CUDA device here; run it on a GPU machine", file=sys.stderr)
        return 2
    if importlib.util.find_spec("triton") is None:
        print("bench/flash_attention_gpu.py: triton is not installed; pip install triton==3.7.1", file=sys.stderr)
        return 2
    reference = load_reference()
    device = torch.device("cuda")
    rows = []
    started = time.time()
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        for d in args.dims:
            for n in args.lengths:
                batch = max(1, args.tokens // n)
                for causal in (False, True):
                    generator = torch.Generator(device=device).manual_seed(0)
                    q, k, v = (torch.randn(batch, args.heads, n, d, device=device, dtype=dtype, generator=generator)
                               for _ in range(3))
                    row = dict(dtype=dtype_name, d=d, N=n, B=batch, H=args.heads, causal=causal)
                    try:
                        ours = reference.flash_attention_triton_forward(q, k, v, causal=causal)[0]
                        theirs = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                        row["max_abs_error_vs_sdpa"] = float((ours.float() - theirs.float()).abs().max())
                        del ours, theirs
                        flops = 4 * batch * args.heads * n * n * d * (0.5 if causal else 1.0)
                        triton_ms = time_ms(torch, lambda: reference.flash_attention_triton_forward(q, k, v, causal=causal),
                                            args.repeats, args.warmup)
                        sdpa_ms = time_ms(torch, lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                                          args.repeats, args.warmup)
                        row.update(triton_ms=round(triton_ms, 4), sdpa_ms=round(sdpa_ms, 4),
                                   triton_tflops=round(flops / triton_ms / 1e9, 2),
                                   sdpa_tflops=round(flops / sdpa_ms / 1e9, 2),
                                   ratio_triton_over_sdpa=round(sdpa_ms / triton_ms, 3))
                    except (RuntimeError, torch.cuda.OutOfMemoryError) as error:  # one size failing is a data point
                        row["error"] = f"{type(error).__name__}: {str(error)[:300]}"
                        torch.cuda.empty_cache()
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    import triton

    record = {
        "benchmark": "a07 reference Triton forward vs F.scaled_dot_product_attention (forward only)",
        "device": torch.cuda.get_device_name(0),
        "capability": list(torch.cuda.get_device_capability(0)),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "triton": triton.__version__,
                     "cuda": torch.version.cuda},
        "flops_rule": "4*B*H*N*N*d per forward, halved when causal",
        "timing": f"median of {args.repeats} CUDA-event timings after {args.warmup} warm-up calls",
        "seconds": round(time.time() - started, 1),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
