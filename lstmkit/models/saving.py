"""Saving and loading models and training checkpoints, with no pickle anywhere.

A saved model is a directory::

    config.json          architecture (each layer's get_config), compile settings, library version
    model.safetensors    the weights (model.state_dict())

A training checkpoint (``ModelCheckpoint``) adds ``training_state.safetensors``: optimizer tensors,
the random number generator state and carried recurrent states as tensors, and everything else
(epoch, history, callback counters, optimizer hyper-parameters) as JSON in the file's metadata.
Every file is written to a temporary name in the same directory and renamed over the old one
(``os.replace``), so a crash leaves either the old file or the new one, never half of one; the
weights and training state both record their epoch, and resuming refuses a pair that disagrees.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lstmkit._io import atomic_path, write_atomic
from lstmkit._version import __version__
from lstmkit.errors import NotBuiltError

logger = logging.getLogger("lstmkit.models")

FORMAT = "lstmkit.model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TRAINING_FILE = "training_state.safetensors"


def _save_tensors_atomic(path: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)


def _weights(model) -> dict[str, torch.Tensor]:
    # Cloned so that tied weights (one tensor under two names) are stored as two plain tensors.
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def _prepare_dir(path: str, owner: str) -> str:
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{owner}: {path!r} is a file; a saved model is a directory. Choose another path.")
    os.makedirs(path, exist_ok=True)
    return path


def model_config(model) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "lstmkit_version": __version__,
        "class_name": type(model).__name__,
        "config": model.get_config(),
        "build_input": model._build_input,
        "compile": model._compile_config(),
    }


def save_model(model, path, *, metadata: dict[str, str] | None = None) -> str:
    """Write ``model`` to the directory ``path`` (created if needed); returns ``path``."""
    if not model.built:
        raise NotBuiltError(f"save: {type(model).__name__} has no weights yet. Give `input_shape=` when "
                            "defining it, or call fit() (or predict on some data) first.")
    path = _prepare_dir(path, "save")
    config = model_config(model)
    write_atomic(os.path.join(path, CONFIG_FILE), (json.dumps(config, indent=2) + "\n").encode())
    _save_tensors_atomic(os.path.join(path, WEIGHTS_FILE), _weights(model), metadata or {})
    return path


def _read_config(path: str) -> dict[str, Any]:
    if not os.path.isdir(path):
        raise FileNotFoundError(f"load_model: no saved model at {path!r}: expected a directory with "
                                f"{CONFIG_FILE} and {WEIGHTS_FILE}, as written by model.save(path).")
    cfg_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(cfg_path):
        raise FileNotFoundError(f"load_model: {path!r} has no {CONFIG_FILE}; it is not a saved lstmkit model.")
    try:
        with open(cfg_path, encoding="utf-8") as f:
            config = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"load_model: {cfg_path} is not valid JSON ({err}); the file is corrupt. "
                         "Save the model again.") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT or "class_name" not in config:
        raise ValueError(f"load_model: {cfg_path} is not an lstmkit model config (expected \"format\": "
                         f"\"{FORMAT}\" and a \"class_name\").")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"load_model: {cfg_path} was written by lstmkit {config.get('lstmkit_version')} in "
                         f"format version {config['format_version']}; this lstmkit ({__version__}) reads "
                         f"version {FORMAT_VERSION}. Upgrade lstmkit.")
    return config


def _read_tensors(file: str, owner: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not os.path.isfile(file):
        raise FileNotFoundError(f"{owner}: {file} is missing.")
    try:
        from safetensors import safe_open

        with safe_open(file, framework="pt") as f:
            metadata = f.metadata() or {}
        return load_file(file), metadata
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{owner}: {file} is corrupt or not a safetensors file ({err}). "
                         "Save the model again.") from None


def load_weights_into(model, tensors: dict[str, torch.Tensor], source: str, owner: str) -> None:
    """Copy ``tensors`` into ``model``, or raise saying which names and shapes differ."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = [f"{k}: saved {tuple(tensors[k].shape)}, model {tuple(expected[k].shape)}"
              for k in sorted(set(expected) & set(tensors)) if tensors[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append("missing from the file: " + ", ".join(missing))
        if unexpected:
            parts.append("not in the model: " + ", ".join(unexpected))
        if shapes:
            parts.append("shape mismatch: " + "; ".join(shapes))
        raise ValueError(f"{owner}: the weights in {source} do not match the model's architecture ("
                         + "; ".join(parts) + ").")
    model.load_state_dict(tensors)


def load_model(path, *, module: torch.nn.Module | None = None, compile: bool = True):
    """Rebuild the model saved in the directory ``path`` by ``model.save(path)``.

    Sequential models are rebuilt from ``config.json`` alone. A model that wraps your own
    ``torch.nn.Module`` cannot be rebuilt from a config: pass a fresh instance of it as
    ``module=`` and its weights are loaded into it. Compile settings saved by name are restored
    (``compile=False`` skips them). Nothing is unpickled.

    >>> import lstmkit, tempfile, os, torch
    >>> model = lstmkit.Sequential([lstmkit.layers.Dense(2)], input_shape=(3,))
    >>> path = model.save(os.path.join(tempfile.mkdtemp(), "m"))
    >>> same = lstmkit.load_model(path)
    >>> bool((same.predict(torch.ones(1, 3)) == model.predict(torch.ones(1, 3))).all())
    True
    """
    from lstmkit.models.model import Model
    from lstmkit.models.sequential import Sequential

    path = os.fspath(path)
    config = _read_config(path)
    class_name = config["class_name"]
    if class_name == "Sequential" and module is None:
        try:
            model = Sequential.from_config(config["config"])
        except (KeyError, TypeError) as err:
            raise ValueError(f"load_model: the architecture in {os.path.join(path, CONFIG_FILE)} is incomplete "
                             f"or corrupt ({err!r}).") from None
    elif module is not None:
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"load_model: `module` must be a torch.nn.Module, got {type(module).__name__}.")
        model = module if isinstance(module, Model) else Model(module)
    else:
        wrapped = (config.get("config") or {}).get("module_class", class_name)
        raise ValueError(f"load_model: {path!r} holds a {class_name} wrapping {wrapped}, which cannot be rebuilt "
                         f"from a config. Pass a fresh instance: load_model(path, module={wrapped.split('.')[-1]}(...)).")
    if not model.built:
        if config.get("build_input") is None:
            raise ValueError(f"load_model: {path!r} does not record the input shape needed to build the model.")
        model._build_from_record(config["build_input"])
    tensors, _ = _read_tensors(os.path.join(path, WEIGHTS_FILE), "load_model")
    load_weights_into(model, tensors, os.path.join(path, WEIGHTS_FILE), "load_model")
    if compile and config.get("compile"):
        model._compile_from_config(config["compile"])
    return model


# ---------------------------------------------------------------------------------------------
# Training checkpoints

def _optimizer_to_storage(optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state_dict into tensors and a JSON-safe remainder."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    state_json: dict[str, dict[str, Any]] = {}
    for pid, entries in sd["state"].items():
        kept = {}
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
                kept[key] = {"tensor": True}
            else:
                kept[key] = value
        state_json[str(pid)] = kept
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"type": type(optimizer).__name__, "state": state_json, "param_groups": groups}


def _optimizer_from_storage(optimizer, tensors, info, source: str) -> None:
    if info.get("type") != type(optimizer).__name__:
        raise ValueError(f"resume_from: {source} holds {info.get('type')} optimizer state, but the model is "
                         f"compiled with {type(optimizer).__name__}. Compile with the same optimizer to resume.")
    current = optimizer.state_dict()
    if len(current["param_groups"]) != len(info["param_groups"]):
        raise ValueError(f"resume_from: {source} has {len(info['param_groups'])} optimizer parameter groups, "
                         f"the current optimizer {len(current['param_groups'])}.")
    groups = []
    for saved, now in zip(info["param_groups"], current["param_groups"]):
        if len(saved["params"]) != len(now["params"]):
            raise ValueError(f"resume_from: {source} optimizes {len(saved['params'])} parameter tensors, the "
                             f"model has {len(now['params'])}; the architecture differs.")
        groups.append({k: (tuple(v) if isinstance(now.get(k), tuple) else v) for k, v in saved.items()})
    state = {}
    for pid, entries in info["state"].items():
        state[int(pid)] = {key: (tensors[f"optimizer.{pid}.{key}"] if isinstance(value, dict) and value.get("tensor")
                                 else value) for key, value in entries.items()}
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(model, path, *, epoch: int) -> str:
    """Write a resumable checkpoint of ``model`` after ``epoch`` completed epochs."""
    from lstmkit.models import training

    path = _prepare_dir(path, "ModelCheckpoint")
    tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
    info: dict[str, Any] = {"epoch": epoch, "lstmkit_version": __version__}
    if model.optimizer is not None:
        opt_tensors, info["optimizer"] = _optimizer_to_storage(model.optimizer)
        tensors.update(opt_tensors)
    for i, states in enumerate(training.get_states(training.state_layers(model))):
        for j, s in enumerate(states or ()):
            tensors[f"states.{i}.{j}"] = s.to("cpu", copy=True).contiguous()
    info["callbacks"] = [{"class": type(cb).__name__, "state": cb.state_dict()} for cb in model._active_callbacks]
    save_model(model, path, metadata={"epoch": str(epoch)})
    _save_tensors_atomic(os.path.join(path, TRAINING_FILE), tensors,
                         {"lstmkit_training_state": json.dumps(info)})
    return path


def load_checkpoint(model, path, callbacks: list) -> int:
    """Restore weights, optimizer, RNG, states and callback counters from ``path``; returns the epoch."""
    from lstmkit.models import training

    path = os.fspath(path)
    if not os.path.isdir(path) or not os.path.isfile(os.path.join(path, TRAINING_FILE)):
        raise FileNotFoundError(f"resume_from: no checkpoint at {path!r}: expected a directory written by "
                                f"ModelCheckpoint, holding {WEIGHTS_FILE} and {TRAINING_FILE}.")
    config = _read_config(path)
    if not model.built:
        model._build_from_record(config.get("build_input"))
    weights_file = os.path.join(path, WEIGHTS_FILE)
    weights, weights_meta = _read_tensors(weights_file, "resume_from")
    train_file = os.path.join(path, TRAINING_FILE)
    tensors, meta = _read_tensors(train_file, "resume_from")
    try:
        info = json.loads(meta["lstmkit_training_state"])
    except (KeyError, json.JSONDecodeError):
        raise ValueError(f"resume_from: {train_file} has no readable training state; the file is corrupt.") from None
    if weights_meta.get("epoch") != str(info["epoch"]):
        raise ValueError(f"resume_from: {path!r} is inconsistent: the weights are from epoch "
                         f"{weights_meta.get('epoch')}, the training state from epoch {info['epoch']} "
                         "(a write was interrupted). Use an earlier checkpoint.")
    load_weights_into(model, weights, weights_file, "resume_from")
    if "optimizer" in info:
        model._ensure_optimizer()
        _optimizer_from_storage(model.optimizer, tensors, info["optimizer"], train_file)
    torch.set_rng_state(tensors["rng.torch"])
    layers = training.state_layers(model)
    states = []
    for i in range(len(layers)):
        found = [tensors[f"states.{i}.{j}"] for j in range(8) if f"states.{i}.{j}" in tensors]
        states.append(tuple(found) if found else None)
    training.set_states(layers, states)
    saved = info.get("callbacks", [])
    for cb in callbacks:
        match = next((s for s in saved if s["class"] == type(cb).__name__), None)
        if match is not None:
            saved.remove(match)
            cb.load_state_dict(match["state"])
    return int(info["epoch"])
