"""``Model``: the five-step life cycle (define, compile, fit, evaluate, predict) around any network.

``Model(module)`` wraps any ``torch.nn.Module`` whose ``forward(x)`` returns a tensor; subclass
``Model`` and write ``forward`` yourself; or use ``Sequential``, which is a ``Model`` made of a
list of layers. Everything below works the same for all three.

Shapes are batch-first: inputs ``(B, T, F)`` for sequences, ``(B, F)`` otherwise; targets have the
shape of the model's output (class ids for ``sparse_categorical_crossentropy``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from lstmkit._validation import check_choice, check_float, check_int
from lstmkit.errors import NotBuiltError, NotCompiledError, TrainingDivergedError
from lstmkit.layers.base import Layer
from lstmkit.models import distributed as D
from lstmkit.models import losses as L
from lstmkit.models import training as T
from lstmkit.models.callbacks import Callback, History

logger = logging.getLogger("lstmkit.models")

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
           "bfloat16": torch.bfloat16, "int64": torch.int64}

# compile(precision=...): the dtype autocast runs matrix products in (None: no autocast).
DEFAULT_BATCH_SIZE = 32  # fit, evaluate and predict, as in Keras
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class _Diverged(Exception):
    def __init__(self, value: float, where: str):
        super().__init__(where)
        self.value, self.where = value, where


class Model(nn.Module):
    """A network with ``compile``, ``fit``, ``evaluate``, ``predict``, ``save``.

    Args:
        module: any ``torch.nn.Module`` mapping a batch ``x`` to a tensor. Leave it out when
            subclassing ``Model`` and defining ``forward`` yourself.

    >>> import torch, lstmkit
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    >>> model = lstmkit.Model(net)
    >>> model.compile(optimizer="adam", loss="mse", learning_rate=0.01)
    >>> x = torch.randn(64, 3); y = x.sum(1, keepdim=True)
    >>> history = model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    >>> history.history["loss"][-1] < history.history["loss"][0]
    True
    >>> model.predict(x[:2]).shape
    (2, 1)
    """

    def __init__(self, module: nn.Module | None = None):
        super().__init__()
        if module is not None and not isinstance(module, nn.Module):
            raise TypeError(f"Model: `module` must be a torch.nn.Module, got {type(module).__name__}.")
        self.module = module
        self.optimizer: torch.optim.Optimizer | None = None
        self.stop_training = False
        self.history: History | None = None
        self._compiled: dict[str, Any] | None = None
        self._build_input: dict[str, Any] | None = None
        self._active_callbacks: list[Callback] = []

    # ------------------------------------------------------------------ define
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.module is None:
            raise NotImplementedError(f"{type(self).__name__}: define forward(x), or pass a module: Model(module).")
        return self.module(x)

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The output and its mask (None unless the network carries one)."""
        out = self(x)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"{type(self).__name__}: the network must return a tensor, got {type(out).__name__}. "
                            "Wrap it so forward returns the prediction alone (e.g. take out[0] of an nn.LSTM).")
        return out, None

    @property
    def built(self) -> bool:
        """Whether every weight exists (layers with a lazy input size get theirs on the first call)."""
        if self.__dict__.get("_built_seen"):
            return True
        for m in self.modules():
            if isinstance(m, Layer) and not m.built:
                return False
        if any(isinstance(p, nn.parameter.UninitializedParameter) for p in self.parameters()):
            return False
        self.__dict__["_built_seen"] = True  # weights, once created, stay (Sequential.add clears this)
        return True

    def _record_input(self, x: torch.Tensor) -> None:
        if self._build_input is None:
            dtype = str(x.dtype).replace("torch.", "")
            self._build_input = {"shape": list(x.shape[1:]), "dtype": dtype}

    def _build_with(self, x: torch.Tensor) -> None:
        """Create lazy weights by one forward pass that changes nothing else."""
        try:
            with self._evaluation_mode(), torch.no_grad():
                self(x)
        finally:
            self.reset_states()
        self._record_input(x)

    @contextlib.contextmanager
    def _evaluation_mode(self, modules: list[nn.Module] | None = None):
        """Evaluation mode for the duration; afterwards every module is back in its own mode."""
        switched = _to_evaluation_mode(modules or _modules_of(self))
        try:
            yield
        finally:
            _back_to_training_mode(switched)

    def _build_with_shape(self, shape, batch: int, dtype: torch.dtype) -> None:
        """Build on zeros of ``(batch, *shape)``; an unknown (None) length is tried at 1, 8, 32,
        128 steps in turn, since convolutions and pooling need a minimum length."""
        error = None
        for n in (1, 8, 32, 128) if None in shape else (None,):
            try:
                self._build_with(torch.zeros(batch, *[n if d is None else int(d) for d in shape], dtype=dtype))
                return
            except (ValueError, RuntimeError) as exc:
                error = exc
        raise error

    def _build_from_record(self, record: dict[str, Any] | None) -> None:
        if not record:
            raise NotBuiltError(f"{type(self).__name__}: cannot build without knowing the input shape.")
        batch = getattr(self, "batch_size", None) or 1
        self._build_with_shape(list(record["shape"]), batch, _DTYPES.get(record.get("dtype"), torch.float32))

    def reset_states(self) -> None:
        """Forget the state carried by stateful recurrent layers (back to zeros)."""
        for m in self.modules():
            if m is not self and not isinstance(m, Model) and callable(getattr(m, "reset_states", None)):
                m.reset_states()

    @property
    def stateful(self) -> bool:
        return any(getattr(m, "stateful", False) for m in T.state_layers(self))

    def _float_dtype(self) -> torch.dtype:
        return self._dtype_and_device()[0]

    def _device(self) -> torch.device:
        return self._dtype_and_device()[1]

    def _dtype_and_device(self, modules: list[nn.Module] | None = None) -> tuple[torch.dtype, torch.device]:
        """The dtype inputs are converted to (the first parameter's, if floating and created, else
        float32) and the device of the first created parameter (else the CPU), in one walk."""
        dtype = None
        for m in modules or _modules_of(self):  # the order of self.parameters(), without its generator chain
            for p in m._parameters.values():
                if p is None:
                    continue
                created = not isinstance(p, nn.parameter.UninitializedParameter)
                if dtype is None:
                    dtype = p.dtype if created and p.is_floating_point() else torch.float32
                if created:
                    return dtype, p.device
        return dtype or torch.float32, torch.device("cpu")

    def summary(self, print_fn=print) -> str:
        """Print (with ``print_fn``) and return a table of the layers, output shapes and parameter counts."""
        rows = [(name, type(m).__name__, "-", sum(p.numel() for p in m.parameters()))
                for name, m in (self.module or self).named_children()]
        return self._print_table(rows, print_fn)

    def _print_table(self, rows, print_fn) -> str:
        header = ("Layer", "Type", "Output shape", "Params")
        table = [header] + [(str(a), str(b), str(c), f"{d:,}") for a, b, c, d in rows]
        widths = [max(len(r[i]) for r in table) for i in range(4)]
        line = "-" * (sum(widths) + 6)
        out = [f"{type(self).__name__}", line]
        for i, r in enumerate(table):
            out.append("  ".join(c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
            if i == 0:
                out.append(line)
        total = sum(p.numel() for p in self.parameters() if not isinstance(p, nn.parameter.UninitializedParameter))
        trainable = sum(p.numel() for p in self.parameters()
                        if p.requires_grad and not isinstance(p, nn.parameter.UninitializedParameter))
        out += [line, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                f"Non-trainable params: {total - trainable:,}"]
        if not self.built:
            out.append("(not built yet: some layers get their weights on the first call)")
        text = "\n".join(out)
        if print_fn is not None:
            print_fn(text)
        return text

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, *, learning_rate: float | None = None,
                clipnorm: float | None = None, clipvalue: float | None = None, precision: str = "fp32") -> None:
        """Choose how to train: the optimizer, the loss, metrics to report, gradient clipping.

        Args:
            optimizer: a name (``"adam"``, ``"sgd"``, ``"rmsprop"``, ``"adamw"``, ``"adagrad"``,
                ``"adadelta"``, ``"adamax"``, ``"nadam"``; Keras's default hyper-parameters), a
                ``torch.optim.Optimizer`` built on this model's parameters, or a callable
                ``params -> optimizer`` such as ``functools.partial(torch.optim.SGD, momentum=0.9)``.
            loss: a name (``"mse"``, ``"mae"``, ``"huber"``, ``"rmse"``, ``"mape"``,
                ``"binary_crossentropy"``, ``"categorical_crossentropy"``,
                ``"sparse_categorical_crossentropy"``; cross-entropies take probabilities) or a
                callable ``(pred, y) -> scalar`` such as ``torch.nn.BCEWithLogitsLoss()``.
            metrics: names (``"accuracy"``, ``"mae"``, ``"rmse"``, ...) or callables.
            learning_rate: overrides the optimizer's default learning rate.
            clipnorm: rescale the gradient when its global norm (over all parameters, as
                ``torch.nn.utils.clip_grad_norm_``; Keras calls this ``global_clipnorm``) exceeds it.
            clipvalue: clip every gradient element to ``[-clipvalue, clipvalue]``.
            precision: ``"fp32"`` (default); ``"bf16"``: forward passes (fit, evaluate, predict)
                run under ``torch.autocast`` in bfloat16, the weights, optimizer, loss and a
                recurrent cell state that starts in float32 stay float32; ``"fp16"``: the same in
                float16 with loss scaling (``torch.amp.GradScaler``), CUDA only.

        >>> import lstmkit
        >>> model = lstmkit.Sequential([lstmkit.layers.Dense(1)], input_shape=(4,))
        >>> model.compile(optimizer="adam", loss="mse", metrics=["mae"], learning_rate=0.01, clipnorm=1.0)
        """
        if loss is None:
            raise ValueError("compile: `loss` is required, e.g. compile(optimizer='adam', loss='mse').")
        L.check_optimizer(optimizer)
        loss_obj = L.Loss(loss)
        if metrics is None:
            metrics = []
        elif isinstance(metrics, (str,)) or callable(metrics):
            metrics = [metrics]
        elif not isinstance(metrics, (list, tuple)):
            raise TypeError(f"compile: `metrics` must be a list of names or callables, got {type(metrics).__name__}.")
        metric_objs = [L.Metric(m, loss_obj.name) for m in metrics]
        if learning_rate is not None:
            learning_rate = check_float("compile", "learning_rate", learning_rate, low=0.0)
        if clipnorm is not None:
            clipnorm = check_float("compile", "clipnorm", clipnorm, low=0.0)
        if clipvalue is not None:
            clipvalue = check_float("compile", "clipvalue", clipvalue, low=0.0)
        precision = check_choice("compile", "precision", precision, tuple(PRECISIONS))
        self._compiled = {"optimizer": optimizer, "loss": loss_obj, "metrics": metric_objs,
                          "learning_rate": learning_rate, "clipnorm": clipnorm, "clipvalue": clipvalue,
                          "precision": precision}
        self.__dict__["_scaler"] = None
        self.optimizer = None
        if isinstance(optimizer, torch.optim.Optimizer) or self.built:
            self._ensure_optimizer()

    def _ensure_optimizer(self) -> torch.optim.Optimizer:
        if self.optimizer is None:
            c = self._compiled
            self.optimizer = L.make_optimizer(c["optimizer"], [p for p in self.parameters() if p.requires_grad],
                                              c["learning_rate"])
        return self.optimizer

    def _require_compiled(self, what: str) -> dict[str, Any]:
        if self._compiled is None:
            raise NotCompiledError(f"{what}: the model is not compiled. Call model.compile(optimizer=..., loss=...) "
                                   f"first, e.g. model.compile(optimizer='adam', loss='mse').")
        return self._compiled

    def _compile_config(self) -> dict[str, Any] | None:
        c = self._compiled
        if c is None:
            return None
        lr = c["learning_rate"]
        if isinstance(c["optimizer"], torch.optim.Optimizer):
            lr = float(c["optimizer"].param_groups[0]["lr"])
        metrics = [m.spec for m in c["metrics"] if isinstance(m.spec, str)]
        config = {"optimizer": L.optimizer_name(c["optimizer"]), "loss": c["loss"].name, "metrics": metrics,
                  "learning_rate": lr, "clipnorm": c["clipnorm"], "clipvalue": c["clipvalue"]}
        if c.get("precision", "fp32") != "fp32":  # configs of fp32 models read as before precision existed
            config["precision"] = c["precision"]
        return config

    def _compile_from_config(self, cfg: dict[str, Any]) -> None:
        if not cfg.get("optimizer") or not cfg.get("loss"):
            logger.warning("load_model: the model was compiled with a custom optimizer or loss, which cannot be "
                           "saved by name; call compile() again before training.")
            return
        self.compile(optimizer=cfg["optimizer"], loss=cfg["loss"], metrics=cfg.get("metrics") or [],
                     learning_rate=cfg.get("learning_rate"), clipnorm=cfg.get("clipnorm"),
                     clipvalue=cfg.get("clipvalue"), precision=cfg.get("precision", "fp32"))

    # ------------------------------------------------------------------ precision
    def _precision(self) -> str:
        return (self._compiled or {}).get("precision", "fp32")

    def _autocast(self, device: torch.device | None = None):
        """The autocast context of the compiled precision (a no-op for fp32)."""
        dtype = PRECISIONS[self._precision()]
        if dtype is None:
            return contextlib.nullcontext()
        device = device or self._device()
        if dtype is torch.float16 and device.type != "cuda":
            raise ValueError(f"fit: compile(precision='fp16') needs a CUDA GPU (float16 autocast with loss "
                             f"scaling); the model is on {device.type}. On the CPU use precision='bf16'.")
        return torch.autocast(device_type=device.type, dtype=dtype)

    def _check_bf16_layers(self) -> None:
        """Refuse, naming the layer, what oneDNN cannot run in bfloat16 on this CPU."""
        if self._device().type != "cpu" or torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return
        from lstmkit.cells import LSTMCell
        from lstmkit.engine.native import native_unsupported_reason

        for name, m in self.named_modules():
            cell = getattr(m, "cell", None)
            if (isinstance(cell, LSTMCell) and getattr(m, "engine", None) == "native"
                    and native_unsupported_reason(cell, None, None) is None):
                raise ValueError(
                    f"fit: compile(precision='bf16'): layer {name!r} ({type(m).__name__}) would run oneDNN's "
                    "native LSTM, which has no bfloat16 kernel on this CPU (it needs AVX-512). Give the layer "
                    "engine='auto' or 'fused', or compile with precision='fp32'.")

    def _loss(self, loss_fn, out, yb, mask):
        # The loss is computed in float32 from half-precision outputs: reductions and logs lose
        # too much in 8 (bf16) or 11 (fp16) significant bits.
        return loss_fn(_full(out), yb, mask)

    def _train_forward(self, x):
        """The training forward pass: through DistributedDataParallel when fit runs under torchrun."""
        ddp = self.__dict__.get("_ddp")
        with self._autocast(x.device):
            return ddp(x) if ddp is not None else self._run(x)

    # ------------------------------------------------------------------ data
    def _batches(self, owner: str, x, y, batch_size, need_targets: bool, float_dtype: torch.dtype | None = None):
        fixed = getattr(self, "batch_size", None)
        float_dtype = float_dtype or self._float_dtype()
        if isinstance(x, torch.utils.data.DataLoader):
            if y is not None:
                raise ValueError(f"{owner}: `y` must be None when `x` is a DataLoader (it yields the targets).")
            return T.LoaderBatches(x, owner, float_dtype, need_targets)
        if x is None:
            raise ValueError(f"{owner}: `x` is required.")
        x = T.as_tensor(owner, "x", x, float_dtype)
        if need_targets and y is None:
            raise ValueError(f"{owner}: `y` (the targets) is required.")
        if y is not None:
            y = T.as_tensor(owner, "y", y, float_dtype)
            if y.shape[0] != x.shape[0]:
                raise ValueError(f"{owner}: `x` has {x.shape[0]} samples but `y` has {y.shape[0]}; "
                                 "they must match along the first (batch) axis.")
        if x.dim() == 0 or x.shape[0] == 0:
            raise ValueError(f"{owner}: `x` holds no samples (shape {tuple(x.shape)}).")
        if batch_size is None:
            batch_size = fixed or DEFAULT_BATCH_SIZE
        batch_size = check_int(owner, "batch_size", batch_size, minimum=1)
        if fixed is not None:
            if batch_size != fixed:
                raise ValueError(f"{owner}: the model was defined with a fixed batch size of {fixed} "
                                 f"(`batch_size` in Sequential), got `batch_size`={batch_size}. Use {fixed}.")
            if x.shape[0] % fixed:
                raise ValueError(f"{owner}: the model has a fixed batch size of {fixed}, but `x` has {x.shape[0]} "
                                 f"samples, not a multiple of it. Drop or pad {x.shape[0] % fixed} samples.")
        return T.ArrayBatches(x, y, batch_size)

    def _to_device(self, t, device=None):
        if t is None:
            return None
        device = device or self._device()
        return t if t.device == device else t.to(device, non_blocking=True)

    # ------------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1, verbose: int = 1,
            callbacks: list[Callback] | None = None, validation_split: float = 0.0, validation_data=None,
            shuffle: bool = True, initial_epoch: int = 0, *, reset_states: str | None = None,
            tbptt=None, resume_from: str | os.PathLike | None = None) -> History:
        """Train the model; returns a ``History`` (``history.history["loss"]``, ``["val_loss"]``, ...).

        Args:
            x, y: inputs and targets as NumPy arrays or torch tensors, or ``x`` a
                ``torch.utils.data.DataLoader`` yielding ``(x, y)`` batches (then ``y=None``).
            batch_size: samples per gradient step (default 32, or the model's fixed batch size).
            epochs: train until this epoch index (counting ``initial_epoch``).
            verbose: 0 silent, 1 a progress bar per epoch, 2 one log line per epoch (``logging``).
            callbacks: ``lstmkit.callbacks`` objects.
            validation_split: the *last* fraction of ``x, y`` (taken before any shuffling, so the
                held-out part of a time series comes after the training part) for validation.
            validation_data: ``(x_val, y_val)`` or a DataLoader; overrides ``validation_split``.
            shuffle: shuffle the training samples each epoch (turn off for stateful models).
            initial_epoch: the epoch to start from (for continuing a run by hand).
            reset_states: ``"epoch"`` resets stateful layers before each epoch, ``"batch"`` before
                each batch (each batch a separate stream), None never.
            tbptt: truncated back-propagation through time (Williams & Peng 1990). ``k``: split each
                batch's sequences into chunks of k steps, one update per chunk, carrying the state
                across chunks detached. ``(k1, k2)``: update every k1 steps, back-propagating through
                the last k2 steps (k2 >= k1); the state saved k2 steps back is restored and those
                steps re-run with the current weights, the loss taken on the newest k1 outputs.
                Needs per-step targets ``y`` of shape ``(B, T, ...)`` and a model that returns
                one output per step (``return_sequences=True``).
            resume_from: a ``ModelCheckpoint`` directory: restore weights, optimizer, epoch, history,
                random state and callback counters, and continue until ``epochs``.

        Under ``torchrun`` (``lstmkit train --nproc N``), ``fit`` trains data-parallel: see
        :mod:`lstmkit.models.distributed`. ``batch_size`` is then per process.
        """
        compiled = self._require_compiled("fit")
        epochs = check_int("fit", "epochs", epochs, minimum=0)
        initial_epoch = check_int("fit", "initial_epoch", initial_epoch, minimum=0)
        verbose = check_choice("fit", "verbose", verbose, (0, 1, 2))
        if reset_states is not None:
            check_choice("fit", "reset_states", reset_states, ("epoch", "batch", None))
        windows = T.check_tbptt(tbptt)
        split = check_float("fit", "validation_split", validation_split, low=0.0, high=1.0, high_inclusive=False)
        if callbacks is not None and not isinstance(callbacks, (list, tuple)):
            raise TypeError(f"fit: `callbacks` must be a list of Callback objects, got {type(callbacks).__name__}.")
        for cb in callbacks or []:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: every entry of `callbacks` must be a lstmkit.callbacks.Callback, "
                                f"got {type(cb).__name__}.")

        dtype, device = self._dtype_and_device()  # one walk (building creates weights on that device)
        train = self._batches("fit", x, y, batch_size, need_targets=True, float_dtype=dtype)
        val = None
        if validation_data is not None:
            if isinstance(validation_data, torch.utils.data.DataLoader):
                val = self._batches("fit", validation_data, None, None, need_targets=True, float_dtype=dtype)
            elif isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
                val = self._batches("fit", validation_data[0], validation_data[1], train_batch_size(train),
                                    need_targets=True, float_dtype=dtype)
            else:
                raise TypeError("fit: `validation_data` must be a pair (x_val, y_val) or a DataLoader, "
                                f"got {type(validation_data).__name__}.")
        elif split > 0.0:
            if not isinstance(train, T.ArrayBatches):
                raise ValueError("fit: `validation_split` needs arrays; with a DataLoader pass `validation_data`.")
            n_val = int(math.floor(train.n * split))
            if n_val < 1 or n_val >= train.n:
                raise ValueError(f"fit: `validation_split`={split} of {train.n} samples leaves "
                                 f"{n_val} for validation and {train.n - n_val} for training; both need at least one.")
            fixed = getattr(self, "batch_size", None)
            if fixed:
                n_val -= n_val % fixed
                if n_val == 0:
                    raise ValueError(f"fit: `validation_split`={split} leaves fewer than one batch of {fixed} "
                                     "for validation; raise it or pass `validation_data`.")
            n_train = train.n - n_val
            val = T.ArrayBatches(train.x[n_train:], train.y[n_train:], train.batch_size)
            train = T.ArrayBatches(train.x[:n_train], train.y[:n_train], train.batch_size)
        if shuffle and self.stateful:
            warnings.warn("fit: shuffling the samples of a stateful model breaks the order its carried state "
                          "relies on; pass shuffle=False.", stacklevel=2)
        if D.init_distributed() is not None:
            train, val = self._shard(train, val, shuffle)
            device = self._device()  # _shard may have moved the model to this rank's GPU
            if not D.is_main_process():
                verbose = 0

        history = History()
        cbs = sorted([history, *(callbacks or [])], key=lambda c: c.order)
        for cb in cbs:
            cb.set_model(self)
            cb.params = {"epochs": epochs, "steps": len(train), "verbose": verbose}
        # Plain attributes set through __dict__: nn.Module.__setattr__ costs more than a small step.
        self.__dict__.update(_active_callbacks=cbs, history=history, stop_training=False)

        if not self.built:
            first = next(iter(train.iterate(False)))[0]
            self._build_with(self._to_device(first, device))
        self._ensure_optimizer()
        if resume_from is not None:
            from lstmkit.models.saving import load_checkpoint

            initial_epoch = load_checkpoint(self, resume_from, cbs)
            logger.info("Resuming from %s after epoch %d.", os.fspath(resume_from), initial_epoch)
        if self._precision() == "bf16":
            self._check_bf16_layers()
        if self._precision() == "fp16" and self.__dict__.get("_scaler") is None:
            self._autocast()  # raises on the CPU
            self.__dict__["_scaler"] = torch.amp.GradScaler(self._device().type)
        if D.active():
            self.__dict__["_ddp"] = D.wrap(self)

        for cb in cbs:
            cb.on_train_begin()
        logs: dict[str, float] = {}
        try:
            for epoch in range(initial_epoch, epochs):
                if reset_states == "epoch":
                    self.reset_states()
                for batches in (train, val):
                    if hasattr(batches, "set_epoch"):
                        batches.set_epoch(epoch)
                for cb in cbs:
                    cb.on_epoch_begin(epoch)
                logs = self._train_epoch(train, epoch, epochs, shuffle, verbose, windows, reset_states, compiled,
                                         val, cbs, device)
                for cb in cbs:
                    cb.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
        except _Diverged as err:
            self.__dict__["_ddp"] = None
            for cb in cbs:
                cb.on_train_end(logs)
            self._active_callbacks = []
            last = f"; the last finite epoch loss was {logs['loss']:.6g}" if "loss" in logs else ""
            error = TrainingDivergedError(
                f"fit: training stopped at {err.where}: the {'loss' if 'gradient' not in err.where else 'gradient norm'} "
                f"became {err.value}{last}. The model keeps the weights from before that batch (all finite). "
                "Lower the learning rate, clip gradients (compile(..., clipnorm=1.0)), or check the data for NaN/inf.")
            error.history = history
            raise error from None
        except BaseException:
            self.__dict__["_ddp"] = None
            raise
        self.__dict__["_ddp"] = None
        for cb in cbs:
            cb.on_train_end(logs)
        self.__dict__["_active_callbacks"] = []
        return history

    def _shard(self, train, val, shuffle):
        """Each process's share of the training and validation batches (under torchrun)."""
        world = D.world_size()
        if D.device_for_rank().type == "cuda" and self._device().type != "cuda":
            self.to(D.device_for_rank())
        if self.stateful:
            if shuffle:
                raise ValueError("fit: a stateful model trained by several processes needs shuffle=False: each "
                                 "process carries the state of its own streams from batch to batch.")
            if isinstance(train, T.ArrayBatches) and train.n % (train.batch_size * world):
                raise ValueError(
                    f"fit: a stateful model trained by {world} processes needs a number of samples that is a "
                    f"multiple of the global batch (`batch_size` {train.batch_size} x {world} processes = "
                    f"{train.batch_size * world}), laid out as {train.batch_size * world} streams; got {train.n}.")
        seed = D.broadcast_int(int(torch.initial_seed() % 2**31), "the start of fit (sharing the shuffle seed)")
        if isinstance(train, T.ArrayBatches):
            train = D.ShardedBatches(train, seed=seed, pad=True)
        else:
            train = D.shard_loader(train, "fit")
        if isinstance(val, T.ArrayBatches):
            val = D.ShardedBatches(val, seed=seed, pad=False)
        elif val is not None:
            val = D.shard_loader(val, "fit (validation_data)")
        if D.is_main_process():
            logger.info("distributed: %d processes x batch_size %d = %d samples per step",
                        world, train_batch_size(train) or 0, (train_batch_size(train) or 0) * world)
        return train, val

    def _train_epoch(self, train, epoch, epochs, shuffle, verbose, windows, reset_states, compiled, val, cbs,
                     device):
        loss_fn, metrics = compiled["loss"], compiled["metrics"]
        for m in metrics:
            m.reset()
        if not self.training:
            self.train()
        bar = None
        if verbose == 1:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(train) or None, desc=f"Epoch {epoch + 1}/{epochs}", unit="batch", leave=True,
                       dynamic_ncols=True)
        layers = T.state_layers(self) if windows is not None else None
        if windows is not None and not layers:
            raise ValueError("fit: `tbptt` needs a model with lstmkit recurrent layers (LSTM, GRU, SimpleRNN), "
                             "whose state it carries across chunks; this model has none.")
        guard = D.collective_guard(f"epoch {epoch + 1}") if D.active() else contextlib.nullcontext()
        try:
            with guard:
                total, count = self._train_batches(train, epoch, shuffle, windows, layers, reset_states, loss_fn,
                                                   metrics, cbs, bar, device)
                if isinstance(train, (D.ShardedBatches, D.LoaderShard)):
                    total, count = self._reduce_epoch(total, count, metrics, f"the end of epoch {epoch + 1}")
                logs = {"loss": total / max(count, 1)}
                for m in metrics:
                    logs[m.name] = m.result()
                if val is not None:
                    saved = T.get_states(T.state_layers(self))
                    logs.update({f"val_{k}": v for k, v in self._evaluate_batches(val, compiled).items()})
                    T.set_states(T.state_layers(self), saved)
            if bar is not None:
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()}, refresh=True)
            elif verbose == 2:
                logger.info("Epoch %d/%d - %s", epoch + 1, epochs,
                            " - ".join(f"{k}: {v:.4g}" for k, v in logs.items()))
            return logs
        finally:
            if bar is not None:
                bar.close()

    def _train_batches(self, train, epoch, shuffle, windows, layers, reset_states, loss_fn, metrics, cbs, bar,
                       device):
        """One pass over this process's training batches: the sample-weighted loss sum and the count."""
        total, count = 0.0, 0
        for i, (xb, yb) in enumerate(train.iterate(shuffle)):
            xb, yb = self._to_device(xb, device), self._to_device(yb, device)
            if reset_states == "batch":
                self.reset_states()
            where = f"epoch {epoch + 1}, batch {i + 1}"
            if windows is None:
                value, n = self._train_step(xb, yb, loss_fn, metrics, where)
            else:
                value, n = self._train_tbptt(xb, yb, windows, layers, loss_fn, metrics, where)
            total += value * n
            count += n
            for cb in cbs:
                cb.on_train_batch_end(i, {"loss": value})
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total / count:.4g}", refresh=False)
        return total, count

    @staticmethod
    def _reduce_epoch(total, count, metrics, where):
        """Sum the loss and every metric's running sums over the processes (under torchrun)."""
        sums = D.all_reduce_sum([total, count, *(v for m in metrics for v in (m._total, m._count))], where)
        for k, m in enumerate(metrics):
            m._total, m._count = sums[2 + 2 * k], sums[3 + 2 * k]
        return sums[0], sums[1]

    def _step(self, loss: torch.Tensor, where: str) -> float:
        """Back-propagate ``loss`` and update, unless the loss or the gradient is not finite.

        Under torchrun the loss is first averaged over the processes, so that all of them see
        the same value and stop together if it is not finite (DDP would otherwise wait forever
        for the gradients of a process that stopped).
        """
        value = loss.detach().item()
        if D.active() and D.world_size() > 1:
            value = D.all_reduce_sum([value], where)[0] / D.world_size()
        if not math.isfinite(value):
            raise _Diverged(value, where)
        c = self._compiled
        opt = self.optimizer
        scaler = self.__dict__.get("_scaler")
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss.backward()
        params = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
        if c["clipvalue"] is not None:
            torch.nn.utils.clip_grad_value_(params, c["clipvalue"])
        norm = None
        if c["clipnorm"] is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, c["clipnorm"])
        if scaler is not None:
            # float16 gradients overflow now and then: the scaler skips that step and lowers its scale.
            scaler.step(opt)
            scaler.update()
            return value
        if not (bool(torch.isfinite(norm)) if norm is not None else _grads_finite([p.grad for p in params])):
            bad = norm if norm is not None else _report_norm([p.grad for p in params])
            opt.zero_grad(set_to_none=True)
            raise _Diverged(float(bad), where + " (gradient)")
        opt.step()
        return value

    def _train_step(self, xb, yb, loss_fn, metrics, where):
        out, mask = self._train_forward(xb)
        value = self._step(self._loss(loss_fn, out, yb, mask), where)
        if metrics:
            detached = _full(out.detach())
            for m in metrics:
                m.update(detached, yb, mask)
        return value, xb.shape[0]

    def _train_tbptt(self, xb, yb, windows, layers, loss_fn, metrics, where):
        k1, k2 = windows
        if xb.dim() < 3:
            raise ValueError(f"fit: `tbptt` needs sequences `x` of shape (batch, time, features), got {tuple(xb.shape)}.")
        steps = xb.shape[1]
        if yb.dim() < 2 or yb.shape[1] != steps:
            raise ValueError(f"fit: `tbptt` needs one target per time step: `y` of shape (batch, {steps}, ...) to "
                             f"match `x` {tuple(xb.shape)}, got {tuple(yb.shape)}. For one target per sequence, "
                             "train on whole sequences (no tbptt).")
        total, count = 0.0, 0
        with T.carrying_states(layers):
            snapshot, snap_at = T.get_states(layers), 0
            prev_end = 0
            for start, end in T.tbptt_windows(steps, k1, k2):
                if start != snap_at:
                    # Advance the saved state to `start` with the current weights, without gradient.
                    T.set_states(layers, snapshot)
                    with torch.no_grad(), self._autocast(xb.device):
                        self._run(xb[:, snap_at:start])
                    snapshot, snap_at = T.get_states(layers), start
                T.set_states(layers, snapshot)
                out, mask = self._train_forward(xb[:, start:end])
                if out.dim() < 3 or out.shape[1] != end - start:
                    raise ValueError(f"fit: `tbptt` needs a model that returns one output per time step, shape "
                                     f"(batch, time, ...); on a chunk of {end - start} steps it returned "
                                     f"{tuple(out.shape)}. Set return_sequences=True on the last recurrent layer.")
                new = end - prev_end
                out_new = out[:, -new:]
                mask_new = None if mask is None else mask[:, -new:]
                y_new = yb[:, prev_end:end]
                value = self._step(self._loss(loss_fn, out_new, y_new, mask_new),
                                   f"{where}, steps {prev_end + 1}-{end}")
                if k1 == k2:  # the next window starts here: carry this forward pass's final state
                    snapshot, snap_at = T.get_states(layers), end
                if metrics:
                    for m in metrics:
                        m.update(_full(out_new.detach()), y_new, mask_new)
                total += value * new
                count += new
                prev_end = end
            # The layers now hold the state at the end of the sequence (from the last window's
            # forward pass); stateful layers keep it for the next batch, the others forget it.
        return total / max(count, 1), xb.shape[0]

    # ------------------------------------------------------------------ evaluate / predict
    def _evaluate_batches(self, batches, compiled) -> dict[str, float]:
        loss_fn, metrics = compiled["loss"], compiled["metrics"]
        for m in metrics:
            m.reset()
        device = self._device()
        total, count = 0.0, 0
        with self._evaluation_mode(), torch.no_grad():
            for xb, yb in batches.iterate(False):
                xb, yb = self._to_device(xb, device), self._to_device(yb, device)
                with self._autocast(device):
                    out, mask = self._run(xb)
                out = _full(out)
                total += float(loss_fn(out, yb, mask)) * xb.shape[0]
                count += xb.shape[0]
                for m in metrics:
                    m.update(out, yb, mask)
        if isinstance(batches, (D.ShardedBatches, D.LoaderShard)):
            total, count = self._reduce_epoch(total, count, metrics, "validation")
        result = {"loss": total / max(count, 1)}
        for m in metrics:
            result[m.name] = m.result()
        return result

    def evaluate(self, x=None, y=None, batch_size: int | None = None, verbose: int = 0) -> dict[str, float]:
        """The loss and metrics on ``(x, y)``, as a dict: ``{"loss": ..., "accuracy": ...}``.

        >>> import torch, lstmkit
        >>> model = lstmkit.Sequential([lstmkit.layers.Dense(1)], input_shape=(2,))
        >>> model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
        >>> sorted(model.evaluate(torch.zeros(4, 2), torch.zeros(4, 1)))
        ['loss', 'mae']
        """
        compiled = self._require_compiled("evaluate")
        batches = self._batches("evaluate", x, y, batch_size, need_targets=True)
        if not self.built:
            self._build_with(self._to_device(next(iter(batches.iterate(False)))[0]))
        return self._evaluate_batches(batches, compiled)

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise NotBuiltError(f"{what}: the model has no weights yet. Call fit() first, or give the input shape "
                                "when defining it (Sequential([...], input_shape=(timesteps, features))).")

    def predict(self, x, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
        """The model's outputs for ``x`` as a NumPy array (in evaluation mode, batch by batch).

        Stateful layers carry their state from batch to batch, as in training.

        >>> import torch, lstmkit
        >>> model = lstmkit.Sequential([lstmkit.layers.Dense(3)], input_shape=(2,))
        >>> model.predict(torch.zeros(5, 2)).shape
        (5, 3)
        """
        self._require_built("predict")
        modules = _modules_of(self)  # one walk for the dtype, the device and the mode switch
        dtype, device = self._dtype_and_device(modules)
        # A small predict runs ~60 us of Python around its kernels, each step slowed by the caches
        # the kernel evicted (docs/performance.md): a tensor already in the model's dtype that
        # fits one batch skips the conversion and batching, and neither the mode switch nor the
        # grad mode goes through a context manager.
        if (type(x) is torch.Tensor and x.dtype == dtype and x.dim() > 0
                and (batch_size is None or type(batch_size) is int)
                and 0 < x.shape[0] <= (DEFAULT_BATCH_SIZE if batch_size is None else batch_size)
                and getattr(self, "batch_size", None) is None):
            batches, single = None, x
        else:
            batches = self._batches("predict", x, None, batch_size, need_targets=False, float_dtype=dtype)
            single = None
        precision = PRECISIONS[self._precision()]
        switched = _to_evaluation_mode(modules)
        grad_was = torch.is_grad_enabled()
        _set_grad_enabled(False)  # torch.no_grad(), without a context manager or the object set_grad_enabled builds
        try:
            if precision is None:
                outputs = self._predict_batches(single, batches, device)
            else:
                with self._autocast(device):
                    outputs = self._predict_batches(single, batches, device)
        finally:
            _set_grad_enabled(grad_was)
            _back_to_training_mode(switched)
        if not outputs:
            raise ValueError("predict: `x` produced no batches.")
        return (outputs[0] if len(outputs) == 1 else torch.cat(outputs)).numpy()

    def _predict_batches(self, single, batches, device) -> list[torch.Tensor]:
        """``predict``'s outputs, batch by batch (``single``: the whole input as one batch)."""
        if single is not None and device.type == "cpu" and single.is_cpu:  # nothing to move (~3 us of calls)
            out = _full(self._run(single)[0])
            return [out if out.is_cpu else out.cpu()]  # (a model may still hand back another device's tensor)
        if single is not None:
            return [_full(self._run(self._to_device(single, device))[0]).cpu()]
        return [_full(self._run(self._to_device(xb, device))[0]).cpu() for xb, _ in batches.iterate(False)]

    def predict_proba(self, x, batch_size: int | None = None) -> np.ndarray:
        """``predict``: the probabilities a final sigmoid or softmax layer produces."""
        return self.predict(x, batch_size)

    def predict_classes(self, x, batch_size: int | None = None) -> np.ndarray:
        """Class ids: the argmax over the last axis, or ``p > 0.5`` for a single (sigmoid) output.

        The last axis is removed: ``(B, C) -> (B,)``, ``(B, T, C) -> (B, T)``.
        """
        p = self.predict(x, batch_size)
        if p.ndim == 1:
            return (p > 0.5).astype(np.int64)
        if p.shape[-1] == 1:
            return (p[..., 0] > 0.5).astype(np.int64)
        return p.argmax(-1)

    # ------------------------------------------------------------------ save
    def get_config(self) -> dict[str, Any]:
        module = self.module if self.module is not None else self
        return {"module_class": f"{type(module).__module__}.{type(module).__qualname__}"}

    def save(self, path: str | os.PathLike) -> str:
        """Write the model to the directory ``path``: ``config.json`` + ``model.safetensors``.

        Reload with ``lstmkit.load_model(path)`` (for a wrapped module, ``load_model(path, module=...)``).
        """
        from lstmkit.models.saving import save_model

        return save_model(self, path)

    def export(self, path: str | os.PathLike, *, opset: int = 17) -> str:
        """Write the model for serving: ``"model.onnx"`` (ONNX) or ``"model.pt"`` (TorchScript).

        The exported function maps ``x`` (any batch size and sequence length) and, optionally,
        every recurrent layer's state to ``(y, final states)``: see :mod:`lstmkit.models.export`.
        Layers it cannot express raise ``lstmkit.models.export.ExportError`` naming the layer.
        """
        from lstmkit.models.export import export_model

        return export_model(self, path, opset=opset)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Load the weights saved by ``save(path)`` into this (built) model, checking names and shapes."""
        from lstmkit.models.saving import WEIGHTS_FILE, _read_tensors, load_weights_into

        path = os.fspath(path)
        file = os.path.join(path, WEIGHTS_FILE) if os.path.isdir(path) else path
        if not self.built:
            self._require_built("load_weights")
        tensors, _ = _read_tensors(file, "load_weights")
        load_weights_into(self, tensors, file, "load_weights")


# Where the fused check below is exact: CPU kernels for every floating dtype; CUDA's reads float32
# and float16 (it has no bfloat16 kernel, and tests float64 values as float32).
_FUSED_CHECK_DTYPES = {"cpu": (torch.float32, torch.float64, torch.bfloat16, torch.float16),
                       "cuda": (torch.float32, torch.float16)}


def _grads_finite(grads: list[torch.Tensor]) -> bool:
    """Whether every gradient is finite.

    One fused check per (device, dtype) group: the op ``GradScaler`` uses, with a scale of 1
    (which leaves the values unchanged). On a tiny model it costs ~3 us, where the total norm took
    ~60 us, most of ``fit``'s per-batch overhead (docs/performance.md). Groups the op does not
    cover exactly (sparse or complex gradients, bfloat16 or float64 on CUDA, other devices) are
    checked tensor by tensor.
    """
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for g in grads:
        groups.setdefault((g.device, g.dtype), []).append(g)
    for (device, dtype), group in groups.items():
        if (dtype in _FUSED_CHECK_DTYPES.get(device.type, ())
                and all(g.layout == torch.strided for g in group)):
            found = torch.zeros(1, device=device)
            torch._amp_foreach_non_finite_check_and_unscale_(group, found, torch.ones(1, device=device))
            if found.item():
                return False
        elif not all(bool(torch.isfinite(_values(g)).all()) for g in group):
            return False
    return True


def _values(g: torch.Tensor) -> torch.Tensor:
    """The stored values of a gradient: itself, or a sparse tensor's values."""
    if g.layout == torch.strided:
        return g
    return g.coalesce().values() if g.is_sparse else g.values()


def _report_norm(grads: list[torch.Tensor]) -> float:
    """The total norm of a non-finite set of gradients, for the error message."""
    try:
        return float(torch.nn.utils.get_total_norm(grads))
    except (RuntimeError, NotImplementedError):  # layouts the norm does not take
        return float(torch.linalg.vector_norm(torch.cat([_values(g).reshape(-1).double() for g in grads])))


_set_grad_enabled = torch._C._set_grad_enabled  # what torch.set_grad_enabled(mode) sets, called directly


def _to_evaluation_mode(modules: list[nn.Module]) -> list[nn.Module]:
    """Switch ``modules`` to evaluation mode; returns those that were training.

    Sets each module's ``training`` flag directly: ``nn.Module.train`` walks the tree through
    ``__setattr__`` and cost ~100-200 us of every small ``predict`` (docs/performance.md).
    Modules that override ``train`` get their own method called.
    """
    switched = [m for m in modules if m.training]
    for m in switched:
        m.__dict__["training"] = False
    for m in switched:
        if type(m).train is not nn.Module.train:
            m.train(False)
    return switched


def _back_to_training_mode(switched: list[nn.Module]) -> None:
    """Undo :func:`_to_evaluation_mode`."""
    for m in switched:
        m.__dict__["training"] = True
    for m in switched:
        if type(m).train is not nn.Module.train:
            m.train(True)


def _modules_of(root: nn.Module) -> list[nn.Module]:
    """``root`` and every module under it, each once, in the order of ``root.modules()``.

    A plain loop over ``_modules``: ``nn.Module.modules()`` and ``parameters()`` go through
    chains of generators that cost several microseconds on every ``predict`` (docs/performance.md).
    """
    out, seen = [root], {id(root)}
    stack = [iter(root._modules.values())]  # pre-order: the children still to visit, level by level
    while stack:
        for child in stack[-1]:
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                out.append(child)
                stack.append(iter(child._modules.values()))
                break
        else:
            stack.pop()
    return out


def train_batch_size(batches) -> int | None:
    return getattr(batches, "batch_size", None)


def _full(t: torch.Tensor) -> torch.Tensor:
    """Half-precision outputs (autocast) as float32; anything else as it is."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t
