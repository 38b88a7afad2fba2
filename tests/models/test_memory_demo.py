"""The memory demonstration: both reliable ways learn both sequences exactly (a few seeds)."""

import pytest

from lstmkit.cli import main
from lstmkit.experiments import memory


@pytest.mark.parametrize("seed", [0, 1])
def test_whole_sequence_bptt_predicts_both_sequences_exactly(seed):
    result = memory.run("bptt", seed=seed, epochs=250)
    assert result["predictions"] == [[0, 1, 2, 3], [0, 1, 2, 4]]


def test_stateful_streaming_with_tbptt_predicts_both_sequences_exactly():
    result = memory.run("tbptt", seed=0, epochs=250)
    assert result["predictions"] == [[0, 1, 2, 3], [0, 1, 2, 4]]


def test_the_tutorial_way_runs_line_by_line():
    result = memory.run("tutorial", seed=0, epochs=2)  # its success rate is in docs/memory-demo.md
    assert len(result["predictions"]) == 2 and all(len(p) == 4 for p in result["predictions"])


def test_demo_memory_command_prints_the_sequences_and_predictions(capsys):
    assert main(["demo", "memory", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "sequence 3, 0, 1, 2, 3: after 3, 0, 1, 2 predicted 0 1 2 3" in out
    assert "sequence 4, 0, 1, 2, 4: after 4, 0, 1, 2 predicted 0 1 2 4" in out
    assert "solved: both sequences predicted exactly" in out
