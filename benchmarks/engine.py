"""Time the engine's paths against torch.nn.LSTM, measured in one run.

For each size (batch, time, input, hidden) it times the forward pass and the training step
(forward + backward) of:

- torch.nn.LSTM (the anchor: every other row is printed as a ratio to it),
- lstmkit's vanilla LSTM through the native, fused and reference paths,
- lstmkit's fused path for the peephole, cifg, layernorm and lstm1997 variants, and the GRU
  (its fused path and what ``auto`` picks),
- torch.nn.GRU, for the GRU's engine choice,
- lstmkit's SimpleRNN (the Elman RNN, what ``auto`` picks) and torch.nn.RNN,
- Keras 3 (whatever backend it is configured with) where it is installed, timed in the same
  rounds as the other rows.

Columns: forward and train-step (forward + backward) time, each as a ratio to torch.nn.LSTM;
achieved GFLOP/s of the train step (2*B*T*(I+H)*G*H per forward for G gate blocks: 4 for the
LSTM, 3 for the GRU and the three-gate variants cifg and lstm1997; 3x for forward + backward),
and that as a percentage of the fp32 peak, taken as the fastest of a few large square float32
matrix products (torch.mm) timed at the start of the same run; and the activation memory kept for
the backward pass, in bytes per time step (tensors saved by autograd, or by the fused kernel).

Run: ``python benchmarks/engine.py [--threads N] [--repeats N] [--pair-rounds N] [--sizes quick|all] [--size B,T,I,H]
[--retain-memory]``.
Timings are medians over the repeats after one warm-up call, taken in rounds over all rows of a
size (one call of each row per round, in a fresh random order), so that every row sees the same
drift of the machine. A ratio is the median over the rounds of the row's time over the anchor's
in the same round. The anchor is timed twice, as two instances: the second row ("again") shows
how far two identical calls scatter in the run, the floor under any ratio read from the table.
The table says how many threads.

A second table, the head-to-head, answers one question more tightly: is ``engine="auto"``'s
train step within a few percent of ``torch.nn.LSTM``'s? Two things widen the main table's
scatter. A round runs ~16 rows, so a row and the anchor may be seconds apart. And the other rows'
allocations (the reference loop's graph, the fused kernels' buffers) leave glibc's heap in a
state where a later call may page-fault thousands of pages back in, or not, depending on what ran
before it: at (16, 500, 8, 64) calls of the anchor's own kernel took 33-36 ms without faults and
45-69 ms with 2,500-8,800. The head-to-head runs each size in a fresh process (its allocator
shaped by these calls alone, as in a script that trains one model), with just three calls (the
anchor, its second instance, ``auto``) in a fresh random order each round, ``--pair-rounds``
rounds; its "again" column is its own noise floor.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from _timing import alternated_us, paired_ratio

from lstmkit.engine import fused, jit
from lstmkit.engine.allocator import retain_freed_memory
from lstmkit.layers import GRU, LSTM, SimpleRNN

SIZES = [(1, 1000, 1, 64), (16, 500, 8, 64), (32, 100, 32, 128), (64, 100, 64, 256), (128, 50, 128, 512)]
QUICK_SIZES = [(1, 100, 1, 32), (16, 50, 8, 32)]


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
    rows = [("torch.nn.LSTM", lambda: nn.LSTM(I, H, batch_first=True), True),
            # the anchor's own kernel a second time: how far two identical calls scatter in this run
            ("torch.nn.LSTM again (noise floor)", lambda: nn.LSTM(I, H, batch_first=True), True)]
    for engine in ("auto", "native", "fused", "reference"):
        rows.append((f"LSTM vanilla {engine}",
                     lambda e=engine: LSTM(H, input_size=I, return_sequences=True, engine=e), False))
    for variant in ("peephole", "cifg", "layernorm", "lstm1997"):
        rows.append((f"LSTM {variant} fused",
                     lambda v=variant: LSTM(H, variant=v, input_size=I, return_sequences=True, engine="fused"), False))
    rows.append(("GRU auto", lambda: GRU(H, input_size=I, return_sequences=True), False))
    rows.append(("GRU fused", lambda: GRU(H, input_size=I, return_sequences=True, engine="fused"), False))
    rows.append(("torch.nn.GRU", lambda: nn.GRU(I, H, batch_first=True), True))
    rows.append(("SimpleRNN auto", lambda: SimpleRNN(H, input_size=I, return_sequences=True), False))
    rows.append(("torch.nn.RNN", lambda: nn.RNN(I, H, batch_first=True), True))
    return rows


def saved_bytes(module, x, torch_module: bool) -> int:
    """Bytes of activations kept for the backward pass of one forward call."""
    seen = {}

    def pack(t):
        seen[id(t)] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module(x)
    y = out[0] if torch_module else out
    total = sum(seen.values())
    node = y.grad_fn
    # lstmkit's fused kernels keep their per-step activations on the autograd node itself
    stack, visited = [node], set()
    while stack:
        n = stack.pop()
        if n is None or id(n) in visited:
            continue
        visited.add(id(n))
        saved = getattr(n, "saved", None)
        if isinstance(saved, dict):
            for value in saved.values():
                values = value if isinstance(value, (list, tuple)) else [value]
                total += sum(v.numel() * v.element_size() for v in values if isinstance(v, torch.Tensor))
        stack.extend(f for f, _ in getattr(n, "next_functions", ()))
    return total


def keras_train_step(B, T, I, H):
    """A Keras 3 LSTM train step as a callable, or None if Keras is not installed."""
    try:
        import keras
    except Exception:
        return None
    import numpy as np

    model = keras.Sequential([keras.Input((T, I)), keras.layers.LSTM(H, return_sequences=True)])
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    x = np.random.rand(B, T, I).astype("float32")
    y = np.zeros((B, T, H), dtype="float32")
    return lambda: model.train_on_batch(x, y)


def gemm_peak_gflops(repeats: int = 7) -> float:
    """The fp32 peak as this run sees it: the best GFLOP/s of square float32 matrix products
    (the fastest of ``repeats`` calls at each of three sizes: a peak is a best case)."""
    best = 0.0
    for n in (1024, 2048, 3072):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b  # warm-up
        fastest = min(timed(lambda: a @ b) for _ in range(repeats))
        best = max(best, 2 * n**3 / fastest / 1e9)
    return best


def gate_blocks(module) -> int:
    """G, the number of gate blocks of H rows each the cell's products compute."""
    if isinstance(module, (nn.GRU, GRU)):
        return 3
    if isinstance(module, (nn.RNN, SimpleRNN)):
        return 1
    if isinstance(module, LSTM):
        return len(module.cell.variant.gates)
    return 4


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", choices=["quick", "all"], default="all")
    parser.add_argument("--pair-rounds", type=int, default=30,
                        help="rounds of the head-to-head table (auto against torch.nn.LSTM call by call); 0 skips it")
    parser.add_argument("--skip-reference-above", type=int, default=10**9,
                        help="skip the reference loop when B*T*H exceeds this (it is slow)")
    parser.add_argument("--size", action="append", metavar="B,T,I,H",
                        help="run this size only (repeatable), e.g. --size 32,100,32,128")
    parser.add_argument("--retain-memory", action="store_true",
                        help="call lstmkit.retain_freed_memory() first: freed tensors' memory kept for reuse "
                             "instead of page-faulting back in every step (it reaches every row alike)")
    parser.add_argument("--keep-denormals", action="store_true",
                        help="leave denormal floats on (by default they are flushed to zero: a tanh RNN's "
                             "vanishing gradient otherwise runs 10-100x slower on them, which times the CPU's "
                             "denormal handling rather than the paths)")
    parser.add_argument("--head-to-head-child", metavar="B,T,I,H", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    flushed = not args.keep_denormals and torch.set_flush_denormal(True)
    retained = args.retain_memory and retain_freed_memory()
    if args.head_to_head_child:  # the head-to-head of one size, run by head_to_head_in_child
        print(json.dumps(head_to_head(tuple(int(n) for n in args.head_to_head_child.split(",")), args.pair_rounds)))
        return 0
    torch.manual_seed(0)
    order = random.Random(0)  # each round's order of the rows
    sizes = SIZES if args.sizes == "all" else QUICK_SIZES
    if args.size:
        sizes = [tuple(int(n) for n in size.split(",")) for size in args.size]
    print(f"# engine benchmark: torch {torch.__version__}, {args.threads} thread(s), float32, "
          f"median of {args.repeats}, {platform.processor() or platform.machine()}")
    print(f"# compiled sweep: {'on' if fused.JIT_ENABLED else 'off (LSTMKIT_JIT=0 or no numba)'}, "
          f"its matrix product through {jit.BLAS}")
    print("# ratio = the median over rounds of time / torch.nn.LSTM's time in the same round, at the same size "
          "(lower is faster); rows in a fresh random order each round")
    print(f"# denormals: {'flushed to zero (torch.set_flush_denormal)' if flushed else 'kept'}")
    memory = "retained for reuse (lstmkit.retain_freed_memory)" if retained else "returned to the OS (the C default)"
    print(f"# freed memory: {memory}")
    peak = gemm_peak_gflops()
    print(f"# fp32 peak, the fastest square float32 torch.mm of this run: {peak:.0f} GFLOP/s")
    print()
    print("| size (B, T, I, H) | path | forward ms | ratio | train step ms | ratio | GFLOP/s | % of peak "
          "| saved bytes/step |")
    print("|---|---|---|---|---|---|---|---|---|")
    pairs = []  # (size, head-to-head times)
    for B, T, I, H in sizes:
        x = torch.randn(B, T, I)
        rows = []
        for label, make, is_torch in candidates(I, H):
            if label.endswith("reference") and B * T * H > args.skip_reference_above:
                continue
            module = make()
            module(x)  # build lazily sized layers
            fwd, train = step_fns(module, x, is_torch)
            fwd(), train()  # warm-up: allocations, oneDNN primitives, numba compilation
            rows.append((label, module, is_torch, fwd, train, [], []))
        keras_step = keras_train_step(B, T, I, H)
        if keras_step is not None:
            keras_step()  # warm-up: tracing and XLA compilation
        # Rounds over all rows (Keras's too), each in a fresh random order, so that every row
        # sees the same drift of the machine and none always follows the same neighbour.
        t_keras = []
        jobs = [(fwd, train, t_fwd, t_train) for *_, fwd, train, t_fwd, t_train in rows]
        if keras_step is not None:
            jobs.append((None, keras_step, None, t_keras))
        for _ in range(args.repeats):
            order.shuffle(jobs)
            for fwd, train, t_fwd, t_train in jobs:
                if fwd is not None:
                    t_fwd.append(timed(fwd))
                t_train.append(timed(train))
        anchor = rows[0][5:]
        for label, module, is_torch, _, _, t_fwd, t_train in rows:
            ratios = paired_ratio(t_fwd, anchor[0]), paired_ratio(t_train, anchor[1])
            t_fwd, t_train = statistics.median(t_fwd), statistics.median(t_train)
            gflops = 3 * 2 * B * T * (I + H) * gate_blocks(module) * H / t_train / 1e9
            mem = saved_bytes(module, x, is_torch) // T
            print(f"| ({B}, {T}, {I}, {H}) | {label} | {t_fwd * 1e3:.2f} | {ratios[0]:.2f}x "
                  f"| {t_train * 1e3:.2f} | {ratios[1]:.2f}x | {gflops:.0f} | {100 * gflops / peak:.0f}% "
                  f"| {mem:,} |", flush=True)
        if keras_step is None:
            print(f"| ({B}, {T}, {I}, {H}) | Keras 3 | not installed | | | | | | |")
        else:
            print(f"| ({B}, {T}, {I}, {H}) | Keras 3 (jit) | | | {statistics.median(t_keras) * 1e3:.2f} "
                  f"| {paired_ratio(t_keras, anchor[1]):.2f}x | | | |")
        if args.pair_rounds > 0:
            pairs.append(((B, T, I, H), head_to_head_in_child(args, (B, T, I, H))))
    if pairs:
        print()
        print(f"# head-to-head: train step, each size in a fresh process, the three calls in a fresh random "
              f"order each round, {args.pair_rounds} rounds; ratios as above")
        print("| size (B, T, I, H) | torch.nn.LSTM ms | again ms | auto ms | again / torch.nn.LSTM "
              "| auto / torch.nn.LSTM |")
        print("|---|---|---|---|---|---|")
        for (B, T, I, H), times in pairs:
            if isinstance(times, str):
                print(f"| ({B}, {T}, {I}, {H}) | {times} | | | | |")
                continue
            t_anchor, t_again, t_auto = times
            print(f"| ({B}, {T}, {I}, {H}) | {statistics.median(t_anchor) * 1e3:.2f} "
                  f"| {statistics.median(t_again) * 1e3:.2f} | {statistics.median(t_auto) * 1e3:.2f} "
                  f"| {paired_ratio(t_again, t_anchor):.3f}x | {paired_ratio(t_auto, t_anchor):.3f}x |")
    return 0


def head_to_head_in_child(args, size) -> list[list[float]] | str:
    """The head-to-head's times at ``size`` (seconds per call: anchor, again, auto), measured by
    this script in a fresh process with the same threads, denormal and memory settings; or what
    went wrong there."""
    command = [sys.executable, __file__, "--threads", str(args.threads), "--pair-rounds", str(args.pair_rounds),
               "--head-to-head-child", ",".join(map(str, size))]
    command += ["--retain-memory"] * args.retain_memory + ["--keep-denormals"] * args.keep_denormals
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:  # said in the table's row, so that the sizes measured before are kept
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"failed: its process exited with {done.returncode} ({last[0][:200]})"
    return json.loads(done.stdout.splitlines()[-1])


def head_to_head(size, rounds: int) -> list[list[float]]:
    """Seconds per train step of torch.nn.LSTM, a second instance of it and lstmkit's LSTM with
    ``engine="auto"`` at ``size``, one call of each per round in a fresh random order."""
    B, T, I, H = size
    torch.manual_seed(0)
    x = torch.randn(B, T, I)
    modules = [(nn.LSTM(I, H, batch_first=True), True), (nn.LSTM(I, H, batch_first=True), True),
               (LSTM(H, input_size=I, return_sequences=True), False)]
    calls = [step_fns(module, x, is_torch)[1] for module, is_torch in modules]
    # one call of each a round (blocks of one), after one warm-up call each: building,
    # allocations, oneDNN primitives, numba compilation
    return [[us / 1e6 for us in times] for times in alternated_us(calls, calls=1, rounds=rounds, warmup=1)]


if __name__ == "__main__":
    sys.exit(main())
