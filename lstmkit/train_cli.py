"""``lstmkit train CONFIG``: train a model described in one TOML or YAML file, on 1 or N processes.

A run is reproducible from its file: the data, the model, the compile and fit settings, the seed
and where the results go. ``--nproc N`` relaunches the same command under ``torchrun`` with N
processes on this machine (data-parallel, see :mod:`lstmkit.models.distributed`); ``batch_size``
is then per process. Paths in the file are relative to the file. Example (TOML)::

    seed = 0

    [data]
    npz = "data.npz"                # arrays `x` (samples, timesteps, features) and `y`
    # or: dataset = "airline_passengers", lookback = 12, horizon = 1, scale = "minmax"

    [model]
    input_shape = [12, 1]
    layers = [{type = "LSTM", units = 32}, {type = "Dense", units = 1}]

    [compile]
    optimizer = "adam"
    loss = "mse"
    learning_rate = 0.01            # also: metrics, clipnorm, clipvalue, precision

    [fit]
    epochs = 20
    batch_size = 32                 # also: validation_split, shuffle, verbose, tbptt, reset_states

    [output]
    model = "run/model"             # model.save (rank 0)
    checkpoint = "run/checkpoint"   # ModelCheckpoint every epoch; a rerun resumes from it
    export = "run/model.onnx"       # model.export: .onnx or .pt

Light to import: nothing heavy until the command runs.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

logger = logging.getLogger("lstmkit.train")

SECTIONS = ("seed", "data", "model", "compile", "fit", "output")


class ConfigError(ValueError):
    """The run's config file is unreadable or describes something lstmkit cannot build."""


def read_config(path: str) -> dict:
    """The config file as a dict (TOML by ``.toml``, YAML by ``.yaml``/``.yml``)."""
    suffix = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        raise ConfigError(f"train: no config file at {path!r}.")
    if suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            import tomli as tomllib
        with open(path, "rb") as f:
            try:
                config = tomllib.load(f)
            except tomllib.TOMLDecodeError as err:
                raise ConfigError(f"train: {path} is not valid TOML: {err}.") from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError("train: YAML configs need PyYAML: pip install 'lstmkit[train]', or write TOML.") from None
        with open(path, encoding="utf-8") as f:
            try:
                config = yaml.safe_load(f)
            except yaml.YAMLError as err:
                raise ConfigError(f"train: {path} is not valid YAML: {err}.") from None
    else:
        raise ConfigError(f"train: the config file must end in .toml, .yaml or .yml, got {path!r}.")
    if not isinstance(config, dict):
        raise ConfigError(f"train: {path} must hold a table of sections ({', '.join(SECTIONS)}).")
    unknown = sorted(set(config) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"train: unknown section(s) {', '.join(map(repr, unknown))} in {path}. "
                          f"Expected: {', '.join(SECTIONS)}.")
    for name in ("data", "model"):
        if not isinstance(config.get(name), dict):
            raise ConfigError(f"train: {path} needs a [{name}] section.")
    return config


def _resolve(base: str, path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(base, path)


def load_data(section: dict, base: str):
    """``(x, y)`` as float32 arrays from the [data] section."""
    import numpy as np

    if "npz" in section:
        file = _resolve(base, section["npz"])
        with np.load(file) as arrays:
            missing = [k for k in ("x", "y") if k not in arrays]
            if missing:
                raise ConfigError(f"train: {file} lacks the array(s) {missing}; save it with np.savez(path, x=..., y=...).")
            return arrays["x"].astype(np.float32), arrays["y"].astype(np.float32)
    if "dataset" in section:
        from lstmkit import datasets
        from lstmkit.data import MinMaxScaler, Pipeline, StandardScaler

        series = datasets.load(section["dataset"])
        scale = section.get("scale")
        steps = {"minmax": [MinMaxScaler((-1, 1))], "standard": [StandardScaler()], None: []}
        if scale not in steps:
            raise ConfigError(f"train: unknown [data] `scale` {scale!r}. Expected 'minmax', 'standard' or none.")
        pipe = Pipeline(steps[scale], lookback=int(section.get("lookback", 12)), horizon=int(section.get("horizon", 1)))
        x, y = pipe.fit_transform(series)
        return np.asarray(x, np.float32), np.asarray(y, np.float32)
    raise ConfigError("train: the [data] section needs `npz` (a file with arrays x and y) or `dataset` "
                      "(a name from lstmkit.datasets.names()).")


def build_model(section: dict):
    """A compiled-later ``Sequential`` from the [model] section."""
    import lstmkit
    from lstmkit.layers.base import deserialize

    layers = section.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ConfigError("train: [model] needs `layers`, a list such as [{type = \"LSTM\", units = 16}, "
                          "{type = \"Dense\", units = 1}].")
    built = []
    for k, spec in enumerate(layers):
        if not isinstance(spec, dict) or not ("type" in spec or "class_name" in spec):
            raise ConfigError(f"train: [model] layers[{k}] must be a table with `type` (e.g. \"LSTM\") and the "
                              f"layer's arguments, got {spec!r}.")
        if "class_name" in spec:
            built.append(deserialize(spec))
        else:
            args = {key: value for key, value in spec.items() if key != "type"}
            built.append(deserialize({"class_name": spec["type"], "config": args}))
    shape = section.get("input_shape")
    return lstmkit.Sequential(built, input_shape=None if shape is None else tuple(shape),
                              batch_size=section.get("batch_size"))


def _EpochCounter():
    from lstmkit.callbacks import Callback

    class EpochCounter(Callback):
        count = 0

        def on_epoch_end(self, epoch, logs=None):
            self.count += 1

    return EpochCounter()


def run(config: dict, base: str) -> dict:
    """Train as ``config`` says; returns the last epoch's logs and the throughput."""
    import lstmkit
    from lstmkit.callbacks import ModelCheckpoint
    from lstmkit.models import distributed

    lstmkit.set_seed(int(config.get("seed", 0)))
    x, y = load_data(config["data"], base)
    model = build_model(config["model"])
    compile_args = dict(config.get("compile") or {})
    compile_args.setdefault("loss", "mse")
    compile_args.setdefault("optimizer", "adam")
    model.compile(**compile_args)
    fit_args = dict(config.get("fit") or {})
    if isinstance(fit_args.get("tbptt"), list):
        fit_args["tbptt"] = tuple(fit_args["tbptt"])
    fit_args.setdefault("verbose", 2)
    output = dict(config.get("output") or {})
    callbacks = []
    checkpoint = output.get("checkpoint")
    if checkpoint:
        checkpoint = _resolve(base, checkpoint)
        callbacks.append(ModelCheckpoint(checkpoint, monitor="loss"))
        if os.path.isfile(os.path.join(checkpoint, "training_state.safetensors")):
            fit_args["resume_from"] = checkpoint
    counter = _EpochCounter()
    start = time.perf_counter()
    history = model.fit(x, y, callbacks=[counter, *callbacks], **fit_args)
    seconds = time.perf_counter() - start
    epochs_run = counter.count  # this call's epochs; a resumed history holds the earlier ones too
    logs = {k: v[-1] for k, v in history.history.items()}
    split = float(fit_args.get("validation_split", 0.0))
    n_train = len(x) - int(len(x) * split)
    result = {"logs": logs, "epochs": epochs_run, "seconds": seconds, "processes": distributed.world_size(),
              "samples_per_second": n_train * epochs_run / seconds if seconds > 0 else float("nan")}
    if distributed.is_main_process():
        if output.get("model"):
            model.save(_resolve(base, output["model"]))
        if output.get("export"):
            model.export(_resolve(base, output["export"]))
    return result


def add_train_command(commands) -> None:
    """Register ``lstmkit train`` on the top-level sub-command parsers."""
    parser = commands.add_parser(
        "train", help="train a model described in a TOML or YAML file (optionally on N processes)",
        description="Train the model a config file describes: [data], [model], [compile], [fit], [output] "
        "(see lstmkit/train_cli.py for an example). Prints the last epoch's logs and samples/second as JSON.")
    parser.add_argument("config", help="the run's .toml, .yaml or .yml file")
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="train data-parallel on N processes on this machine via torchrun (default 1)")

    def handler(args) -> int:
        if args.nproc < 1:
            parser.error(f"--nproc must be >= 1, got {args.nproc}")
        from lstmkit.models.distributed import launch_info

        if args.nproc > 1 and launch_info() is None:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
                   "-m", "lstmkit.cli", *(["--quiet"] if args.quiet else []), "train", args.config]
            env = {**os.environ}
            env.setdefault("OMP_NUM_THREADS", "1")
            return subprocess.call(cmd, env=env)
        try:
            config = read_config(args.config)
            result = run(config, os.path.dirname(os.path.abspath(args.config)))
        except ConfigError as err:
            print(f"lstmkit train: {err}", file=sys.stderr)
            return 2
        from lstmkit.models import distributed

        if distributed.is_main_process():
            print(json.dumps(result))
        if distributed.active():
            import torch.distributed as dist

            dist.destroy_process_group()
        return 0

    parser.set_defaults(handler=handler)
