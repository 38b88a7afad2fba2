"""benchmarks/engine.py runs end to end at a tiny size and prints a row for every path."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "engine.py"


def test_engine_benchmark_prints_every_row():
    done = subprocess.run([sys.executable, str(SCRIPT), "--size", "2,5,3,4", "--repeats", "1", "--pair-rounds", "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "# denormals: flushed to zero" in out
    assert "# freed memory: returned to the OS" in out  # lstmkit.retain_freed_memory only with --retain-memory
    for label in ("torch.nn.LSTM", "torch.nn.LSTM again (noise floor)", "LSTM vanilla auto", "LSTM vanilla fused", "LSTM layernorm fused", "GRU auto",
                  "torch.nn.GRU", "SimpleRNN auto", "torch.nn.RNN"):
        assert f"| (2, 5, 3, 4) | {label} |" in out, label
    assert "Keras 3" in out  # its row, timed or "not installed"
    # the head-to-head table: the anchor, its second instance and auto, with both ratios
    head = out[out.index("# head-to-head"):]
    row = next(line for line in head.splitlines() if line.startswith("| (2, 5, 3, 4) |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == 6 and all(c.endswith("x") for c in cells[4:]), row
    assert all(float(c) > 0 for c in cells[1:4]), row
