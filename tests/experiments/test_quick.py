"""Each task's --quick form: the LSTM meets the paper's criterion (short lags, few trials)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from lstmkit.experiments import TASKS, run
from lstmkit.experiments._common import Streak
from lstmkit.experiments.continual_reber import wrong_steps
from lstmkit.experiments.long_lag import max_errors
from lstmkit.experiments.reber import strings_correct


def test_streak_counts_the_run_of_correct_sequences():
    s = Streak(4, max_error=0.01)
    assert not s.update([True, True, False, True, True, True], [0, 0, 1, 0, 0, 0])
    assert s.start == 3 and s.run == 3
    assert s.update([True], [0.0])
    s = Streak(2, max_error=0.01)
    assert not s.update([True, True], [0.02, 0.02])  # all correct but the mean error is too high


def test_criteria_on_hand_made_outputs():
    legal = [np.array([[True, True, False]])]
    assert strings_correct([np.array([[0.3, 0.3, 0.29]])], legal).tolist() == [True]
    assert strings_correct([np.array([[0.3, 0.2, 0.29]])], legal).tolist() == [False]
    targets = np.zeros((1, 3, 2)); targets[..., 0] = 1
    out = targets.copy(); out[0, 1, 0] = 0.7  # a middle step off by 0.3
    assert max_errors(out, targets, last_only=False)[0] == pytest.approx(0.3)
    assert max_errors(out, targets, last_only=True)[0] == 0.0
    assert wrong_steps(np.array([[0.52, 0.2]]), np.array([[True, False]])).tolist() == [False]
    assert wrong_steps(np.array([[0.51, 0.49]]), np.array([[True, False]])).tolist() == [True]


def test_unknown_settings_and_cells_are_refused():
    with pytest.raises(ValueError, match="unknown setting"):
        run("reber", quick=True, verbose=False, lag=3)
    with pytest.raises(ValueError, match="unknown `cell` 'lstm2'"):
        run("reber", cell="lstm2", verbose=False)
    with pytest.raises(ValueError, match="unknown task `name` 'reeber'"):
        run("reeber")
    with pytest.raises(ValueError, match="fixed by the task name"):
        run("lag2a", random_middle=True)


def test_reber_quick():
    result = run("reber", quick=True, verbose=False)
    trial = result["trials"][0]
    assert result["solved"] == 1 and trial["train_wrong"] == 0 and trial["test_wrong"] == 0
    assert 0 < trial["sequences"] <= trial["sequences_seen"]


def test_lag2b_quick():
    result = run("lag2b", quick=True, verbose=False)
    assert result["solved"] == 1
    assert result["trials"][0]["test_wrong"] <= 5  # of 512 fresh sequences


def test_temporal_order_quick_from_the_command_line(tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, "-m", "lstmkit.cli", "-q", "experiment", "temporal-order", "--quick",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("temporal-order lstm1997: solved 1 of 1 trials")
    result = json.loads(out.read_text())
    assert result["trials"][0]["test_wrong"] <= 5


def test_command_line_refuses_a_lag_for_a_fixed_length_task():
    proc = subprocess.run([sys.executable, "-m", "lstmkit.cli", "experiment", "reber", "--T", "50"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "`--T` sets the lag of adding, lag2a and lag2b only" in proc.stderr


def test_experiment_all_refuses_single_task_options():
    for extra in (["--T", "50"], ["--cell", "rnn"]):
        proc = subprocess.run([sys.executable, "-m", "lstmkit.cli", "experiment", "all", *extra],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "applies to a single task" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "lstmkit.cli", "experiment", "reber", "--baselines"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "apply to `lstmkit experiment all` only" in proc.stderr


def test_command_line_lists_every_task():
    proc = subprocess.run([sys.executable, "-m", "lstmkit.cli", "experiment", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    for name in TASKS:
        assert name in proc.stdout


@pytest.mark.slow
def test_adding_quick():
    result = run("adding", quick=True, verbose=False)
    assert result["solved"] == 1 and result["trials"][0]["test_wrong"] <= 3


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_continual_reber_runs_the_baselines(cell):
    # their state is (h,) where the LSTM's is (h, c): ending a stream zeroes every state tensor
    result = run("continual-reber", cell=cell, quick=True, verbose=False, max_symbols=8_000)
    assert result["n_trials"] == 1 and result["trials"][0]["sequences_seen"] >= 16  # streams, one per row at least


@pytest.mark.slow
def test_continual_reber_quick_forget_gate():
    result = run("continual-reber", quick=True, verbose=False)
    assert result["solved"] == 1


def test_lag2a_quick():
    result = run("lag2a", quick=True, verbose=False)
    assert result["solved"] == 1 and result["trials"][0]["test_wrong"] == 0


def test_long_lag_last_step_weight_and_learning_rate_drops():
    import torch

    from lstmkit.experiments.long_lag import LastStepLoss

    y = torch.eye(3)[torch.tensor([[0, 1, 2, 0]])]  # (1, 4, 3)
    pred = torch.full((1, 4, 3), 0.25, requires_grad=True)
    pred.data[0, -1] = torch.tensor([0.5, 0.25, 0.25])
    loss = LastStepLoss(2.0)(pred, y)
    assert loss.item() == pytest.approx(-np.log(0.25) + 2.0 * -np.log(0.5))
    loss.backward()  # the last step's gradient is the weight times its own, the middle ones share 1
    assert float(pred.grad[0, -1, 0]) == pytest.approx(2.0 * -1 / 0.5)
    assert float(pred.grad[0, 0, 0]) == pytest.approx(-1 / 0.25 / 3)
    with pytest.raises(ValueError, match="lr_drops"):
        run("lag2a", quick=True, verbose=False, lr_drops=-1)
    with pytest.raises(ValueError, match="last_weight"):
        run("lag2a", quick=True, verbose=False, last_weight=-1.0)


def test_long_lag_tasks_default_to_the_1997_cell_with_a_negative_input_bias():
    from lstmkit.experiments import task_module
    from lstmkit.experiments._common import RecordingLoss, build_network

    assert {name: getattr(task_module(name), "CELL", "lstm") for name in TASKS} == {
        "reber": "lstm", "lag2a": "lstm1997", "lag2b": "lstm1997", "adding": "lstm1997",
        "temporal-order": "lstm1997", "continual-reber": "lstm"}
    model = build_network("lstm1997", 2, 1, units=4, activation="linear", loss=RecordingLoss("mse"),
                          learning_rate=0.01, input_bias=-2.0)
    cell = model.layers[0].cell
    assert cell.bias_ih.shape[0] == 3 * 4  # i, g, o: no forget block
    assert (cell.bias_ih[:4] == -2.0).all() and (cell.bias_hh[:4] == 0.0).all()
