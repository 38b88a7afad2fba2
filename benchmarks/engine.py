"""Time the engine's paths against torch.nn.LSTM, measured in one run.

For each size (batch, time, input, hidden) it times the forward pass and the training step
(forward + backward) of:

- torch.nn.LSTM (the anchor: every other row is printed as a ratio to it),
- lstmkit's vanilla LSTM through the native, fused and reference paths,
- lstmkit's fused path for the peephole, cifg and layernorm variants and the GRU,
- torch.nn.GRU, for the GRU's engine choice.

Run: ``python benchmarks/engine.py [--threads N] [--repeats N] [--sizes quick|all]``.
Timings are medians over the repeats after one warm-up call; the table says how many threads.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch
from torch import nn

from lstmkit.layers import GRU, LSTM

SIZES = [(1, 1000, 1, 64), (16, 500, 8, 64), (32, 100, 32, 128), (64, 100, 64, 256), (128, 50, 128, 512)]
QUICK_SIZES = [(1, 100, 1, 32), (16, 50, 8, 32)]


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: allocations, oneDNN primitive creation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_fns(module, x, torch_module: bool):
    def forward():
        with torch.no_grad():
            module(x)

    def train():
        out = module(x)
        y = out[0] if torch_module else out
        y.sum().backward()

    return forward, train


def candidates(I: int, H: int):
    """(label, module factory, is a torch module) for every row of the table."""
    rows = [("torch.nn.LSTM", lambda: nn.LSTM(I, H, batch_first=True), True)]
    for engine in ("native", "fused", "reference"):
        rows.append((f"LSTM vanilla {engine}",
                     lambda e=engine: LSTM(H, input_size=I, return_sequences=True, engine=e), False))
    for variant in ("peephole", "cifg", "layernorm"):
        rows.append((f"LSTM {variant} fused",
                     lambda v=variant: LSTM(H, variant=v, input_size=I, return_sequences=True, engine="fused"), False))
    rows.append(("GRU fused", lambda: GRU(H, input_size=I, return_sequences=True, engine="fused"), False))
    rows.append(("torch.nn.GRU", lambda: nn.GRU(I, H, batch_first=True), True))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", choices=["quick", "all"], default="all")
    parser.add_argument("--skip-reference-above", type=int, default=10**9,
                        help="skip the reference loop when B*T*H exceeds this (it is slow)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sizes = SIZES if args.sizes == "all" else QUICK_SIZES
    print(f"# engine benchmark: torch {torch.__version__}, {args.threads} thread(s), float32, "
          f"median of {args.repeats}, {platform.processor() or platform.machine()}")
    print("# ratio = time / torch.nn.LSTM time at the same size, in this run (lower is faster)")
    print()
    print("| size (B, T, I, H) | path | forward ms | ratio | train step ms | ratio |")
    print("|---|---|---|---|---|---|")
    for B, T, I, H in sizes:
        x = torch.randn(B, T, I)
        anchor = None
        for label, make, is_torch in candidates(I, H):
            if label.endswith("reference") and B * T * H > args.skip_reference_above:
                continue
            module = make()
            module(x)  # build lazily sized layers
            fwd, train = step_fns(module, x, is_torch)
            t_fwd, t_train = timed(fwd, args.repeats), timed(train, args.repeats)
            if anchor is None:
                anchor = (t_fwd, t_train)
            print(f"| ({B}, {T}, {I}, {H}) | {label} | {t_fwd * 1e3:.2f} | {t_fwd / anchor[0]:.2f}x "
                  f"| {t_train * 1e3:.2f} | {t_train / anchor[1]:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
