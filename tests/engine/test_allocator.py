"""lstmkit.retain_freed_memory: freed tensors' memory kept for reuse (lstmkit/engine/allocator.py).

A setting of the whole process, so each check runs in a fresh interpreter. What it must change
is counted, not timed: the page faults that reallocating a large tensor costs.
"""

import subprocess
import sys

import pytest

SCRIPT = r"""
import resource, sys, torch, lstmkit
from lstmkit.engine import allocator
from lstmkit.engine.allocator import retaining_freed_memory

def faults_per_tensor(rounds=32, window=4):
    # a 64 MB tensor, written, freed, made again: above glibc's largest adaptive mmap threshold
    # (32 MB), so by default every one gets fresh pages from the kernel. Retained, the heap
    # takes a few rounds to hold a free block that fits (torch's aligned allocations ask for a
    # little more than they free; 2-8 rounds here, varying from process to process), then every
    # one reuses it. The steady state: the fewest faults per tensor over `window` rounds in a row.
    counts = []
    for _ in range(rounds):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.ones(16 << 20)
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return min(sum(counts[i:i + window]) / window for i in range(rounds - window + 1))

default = faults_per_tensor()
assert not retaining_freed_memory()
applied = lstmkit.retain_freed_memory()
assert lstmkit.retain_freed_memory() == applied  # again: no change
print(default, applied, retaining_freed_memory(), faults_per_tensor(), allocator._threshold)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_reallocating_a_large_tensor_stops_faulting_after_retain_freed_memory():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    default, applied, retaining, after, threshold = done.stdout.split()
    assert applied == retaining == "True"
    # 64 MB is 16,384 pages of 4 KB, or 32 of 2 MB where transparent huge pages back every mapping
    assert float(default) >= 16
    if int(threshold) >= 64 << 20:  # older glibc caps the threshold at 32 MB (allocator.py)
        assert float(after) < float(default) / 16


def test_it_says_false_and_changes_nothing_off_glibc(monkeypatch):
    from lstmkit.engine import allocator

    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    monkeypatch.setattr(allocator, "_retaining", False)
    assert allocator.retain_freed_memory() is False
    assert not allocator.retaining_freed_memory()
