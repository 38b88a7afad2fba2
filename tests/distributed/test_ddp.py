"""Data-parallel training with real processes: torchrun, gloo on the CPU, tiny models."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import lstmkit
from lstmkit.models import distributed

WORKER = os.path.join(os.path.dirname(__file__), "worker.py")

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")


def torchrun(nproc, *args, timeout=120, env=None):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", WORKER,
           *map(str, args)]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    start = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)
    return result, time.monotonic() - start


def weights(path):
    return load_file(os.path.join(path, "model.safetensors"))


def history(path):
    with open(os.path.join(path, "history.json")) as f:
        return json.load(f)


def assert_same_weights(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=atol, rtol=0, err_msg=k)


def plain_run(out, *args):
    """The worker's training in this process: no torchrun, one process."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ddp_worker", WORKER)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    threads = torch.get_num_threads()
    try:
        worker.main([str(out), *map(str, args)])
    finally:
        torch.set_num_threads(threads)


def test_two_processes_end_with_the_weights_of_one_with_the_same_global_batch(tmp_path):
    # tbptt too: each process carries the state of its own sequences across the chunks.
    two, _ = torchrun(2, tmp_path / "two", "--batch", 4, "--tbptt", 3)
    assert two.returncode == 0, two.stderr[-3000:]
    assert history(tmp_path / "two")["world"] == 2
    plain_run(tmp_path / "one", "--batch", 8, "--tbptt", 3)  # 1 process x 8 samples = 2 x 4
    assert history(tmp_path / "one")["world"] == 1
    assert_same_weights(weights(tmp_path / "one"), weights(tmp_path / "two"))
    h1, h2 = history(tmp_path / "one")["history"], history(tmp_path / "two")["history"]
    assert h1.keys() == h2.keys() == {"loss", "mae", "val_loss", "val_mae"}
    for key in h1:  # training and validation logs are reduced over both processes
        np.testing.assert_allclose(h1[key], h2[key], rtol=1e-5)
    # Only rank 0 wrote: one copy of the model, no per-rank files.
    assert sorted(os.listdir(tmp_path / "two")) == ["config.json", "history.json", "model.safetensors"]


@pytest.mark.slow
def test_shuffled_two_processes_match_one_torchrun_process(tmp_path):
    # Both runs draw the same DistributedSampler permutation, so 2 x 4 samples = 1 x 8.
    one, _ = torchrun(1, tmp_path / "one", "--batch", 8, "--shuffle")
    assert one.returncode == 0, one.stderr[-3000:]
    two, _ = torchrun(2, tmp_path / "two", "--batch", 4, "--shuffle")
    assert two.returncode == 0, two.stderr[-3000:]
    assert_same_weights(weights(tmp_path / "one"), weights(tmp_path / "two"))


def test_a_killed_rank_fails_the_job_quickly_and_the_checkpoint_stays_readable(tmp_path):
    ckpt = tmp_path / "ckpt"
    result, seconds = torchrun(2, tmp_path / "out", "--epochs", 8, "--die-at", 2, "--checkpoint", ckpt,
                               env={"LSTMKIT_DIST_TIMEOUT": "20"})
    assert result.returncode != 0
    assert seconds < 90
    output = result.stdout + result.stderr
    assert "SIGKILL" in output  # torchrun names the rank that died
    assert not os.path.exists(tmp_path / "out")
    model = lstmkit.load_model(ckpt)  # the checkpoint of the last complete epoch
    assert model.predict(np.zeros((2, 6, 2), np.float32)).shape == (2, 1)
    state = load_file(os.path.join(ckpt, "training_state.safetensors"))
    assert "rng.torch" in state


@pytest.mark.slow
def test_a_hung_rank_makes_the_others_fail_with_a_clear_error_after_the_timeout(tmp_path):
    result, seconds = torchrun(2, tmp_path / "out", "--epochs", 8, "--hang-at", 1,
                               env={"LSTMKIT_DIST_TIMEOUT": "4"})
    assert result.returncode != 0
    assert seconds < 90
    output = result.stdout + result.stderr
    assert "DistributedError: fit: rank 0 of 2 lost the other training processes at epoch 2" in output
    assert "LSTMKIT_DIST_TIMEOUT" in output


def test_plain_process_is_not_distributed(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR"):
        monkeypatch.delenv(var, raising=False)
    assert distributed.launch_info() is None
    assert distributed.init_distributed() is None
    assert (distributed.rank(), distributed.world_size(), distributed.is_main_process()) == (0, 1, True)


def test_bad_timeout_variable_is_named(monkeypatch):
    monkeypatch.setenv("LSTMKIT_DIST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="LSTMKIT_DIST_TIMEOUT must be a number of seconds, got 'soon'"):
        distributed._timeout_seconds(None)
