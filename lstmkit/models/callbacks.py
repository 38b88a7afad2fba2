"""Callbacks: code that ``Model.fit`` runs at the start and end of training, epochs and batches.

``History`` is attached to every run. ``EarlyStopping``, ``ModelCheckpoint``, ``CSVLogger``,
``LearningRateScheduler`` and ``ReduceLROnPlateau`` are the usual ones; write your own by
subclassing ``Callback`` and overriding the hooks you need. ``self.model`` is the model being
trained; setting ``self.model.stop_training = True`` ends training after the current epoch.

``logs`` passed to ``on_epoch_end`` hold the epoch's mean loss and metrics, and ``val_``-prefixed
ones when there is validation data: ``{"loss": 0.12, "accuracy": 0.9, "val_loss": 0.15, ...}``.
"""

from __future__ import annotations

import copy
import csv
import inspect
import io
import logging
import math
import os
from typing import Any, Callable

from lstmkit._validation import check_choice, check_float, check_int

logger = logging.getLogger("lstmkit.models")


class Callback:
    """Base class: every hook is a no-op.

    ``state_dict()`` / ``load_state_dict()`` carry a callback's counters through a checkpoint, so
    that ``fit(resume_from=...)`` continues exactly where an interrupted run stopped.
    """

    # Callbacks run in this order at each hook (stable within equal values); checkpoints go last
    # so that they capture the other callbacks' state for the epoch.
    order = 0

    def __init__(self):
        self.model = None
        self.params: dict[str, Any] = {}

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs: dict | None = None) -> None: ...

    def on_train_end(self, logs: dict | None = None) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class History(Callback):
    """Records each epoch's logs: ``history.history["loss"]`` is the list of epoch losses.

    >>> h = History(); h.on_train_begin(); h.on_epoch_end(0, {"loss": 0.5}); h.history
    {'loss': [0.5]}
    """

    order = -100

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None) -> None:
        self.history = {k: list(v) for k, v in self.history.items()}

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "epoch": self.epoch}

    def load_state_dict(self, state) -> None:
        self.history = {k: list(v) for k, v in state.get("history", {}).items()}
        self.epoch = list(state.get("epoch", []))

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class _Monitor:
    """Tracks the best value of one logged quantity ('min' or 'max')."""

    def __init__(self, owner: str, monitor: str, mode: str, min_delta: float):
        self.owner = owner
        self.monitor = monitor
        mode = check_choice(owner, "mode", mode, ("auto", "min", "max"))
        if mode == "auto":
            mode = "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
        self.mode = mode
        self.min_delta = abs(min_delta)
        self.best = math.inf if mode == "min" else -math.inf

    def current(self, logs: dict | None) -> float:
        logs = logs or {}
        if self.monitor not in logs:
            available = ", ".join(repr(k) for k in logs) or "none"
            hint = (" Pass `validation_data` or `validation_split` to fit, or monitor 'loss'."
                    if self.monitor.startswith("val_") else "")
            raise ValueError(f"{self.owner}: `monitor`={self.monitor!r} is not among the logged values "
                             f"({available}).{hint}")
        return float(logs[self.monitor])

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stops training when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights=True`` the model ends with the weights of its best epoch (when
    training stops early and when it runs to the last epoch alike).

    >>> stop = EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 mode: str = "auto", baseline: float | None = None, restore_best_weights: bool = False):
        super().__init__()
        self.tracker = _Monitor("EarlyStopping", monitor, mode, check_float("EarlyStopping", "min_delta", min_delta))
        self.monitor = monitor
        self.patience = check_int("EarlyStopping", "patience", patience, minimum=0)
        self.baseline = baseline
        self.restore_best_weights = bool(restore_best_weights)
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None
        self.best_weights = None

    def on_train_begin(self, logs=None) -> None:
        if self.best_epoch is None and self.baseline is not None:
            self.tracker.best = float(self.baseline)

    def on_epoch_end(self, epoch, logs=None) -> None:
        value = self.tracker.current(logs)
        if self.tracker.improved(value) or (self.best_epoch is None and self.baseline is None):
            self.tracker.best = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = copy.deepcopy(self.model.state_dict())
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            logger.info("EarlyStopping: %s has not improved for %d epochs (best %.6g at epoch %d); stopping.",
                        self.monitor, self.wait, self.tracker.best, (self.best_epoch or 0) + 1)

    def on_train_end(self, logs=None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
            logger.info("EarlyStopping: restored the weights of epoch %d (%s = %.6g).",
                        self.best_epoch + 1, self.monitor, self.tracker.best)

    def state_dict(self):
        return {"wait": self.wait, "best": self.tracker.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state):
        self.wait = state.get("wait", 0)
        self.tracker.best = state.get("best", self.tracker.best)
        self.best_epoch = state.get("best_epoch")


class ModelCheckpoint(Callback):
    """Saves the model after each epoch (or only when ``monitor`` improves, ``save_best_only``).

    A checkpoint is a directory like ``model.save`` writes (``config.json`` and
    ``model.safetensors``) plus ``training_state.safetensors``: the optimizer's state, the epoch,
    the history, the other callbacks' counters, the random number generator and any carried
    recurrent state. Each file is written to a temporary name and renamed into place, so an
    interruption never leaves a half-written file. Under ``torchrun`` only rank 0 writes. ``fit(..., resume_from=filepath)`` continues
    from it. ``filepath`` may contain ``{epoch}`` and logged names, e.g. ``"ckpt-{epoch:03d}"``.

    >>> ckpt = ModelCheckpoint("best-model", monitor="val_loss", save_best_only=True)
    """

    order = 100

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto", verbose: int = 0):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.tracker = _Monitor("ModelCheckpoint", monitor, mode, 0.0)
        self.verbose = verbose
        self.last_saved: str | None = None

    def on_epoch_end(self, epoch, logs=None) -> None:
        logs = logs or {}
        if self.save_best_only:
            value = self.tracker.current(logs)
            if not self.tracker.improved(value):
                return
            self.tracker.best = value
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"ModelCheckpoint: cannot fill in `filepath` {self.filepath!r} ({err!r}); "
                             f"it may use {{epoch}} and the logged names: {', '.join(logs)}.") from None
        from lstmkit.models.distributed import is_main_process
        from lstmkit.models.saving import save_checkpoint

        if not is_main_process():  # under torchrun every process holds the same weights; rank 0 writes
            return
        save_checkpoint(self.model, path, epoch=epoch + 1)
        self.last_saved = path
        (logger.info if self.verbose else logger.debug)("ModelCheckpoint: saved epoch %d to %s", epoch + 1, path)

    def state_dict(self):
        return {"best": self.tracker.best}

    def load_state_dict(self, state):
        self.tracker.best = state.get("best", self.tracker.best)


class CSVLogger(Callback):
    """Writes one row per epoch (``epoch`` and every logged value) to a CSV file.

    The file is rewritten whole after each epoch, atomically; with ``append=True`` rows from an
    earlier run are kept.

    >>> log = CSVLogger("training.csv")
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = bool(append)
        self.rows: list[dict] = []
        self.keys: list[str] = []

    def on_train_begin(self, logs=None) -> None:
        self.rows, self.keys = [], []
        if self.append and os.path.exists(self.filename):
            with open(self.filename, newline="") as f:
                reader = csv.DictReader(f, delimiter=self.separator)
                self.rows = list(reader)
                self.keys = [k for k in (reader.fieldnames or []) if k != "epoch"]

    def on_epoch_end(self, epoch, logs=None) -> None:
        logs = logs or {}
        for key in logs:
            if key not in self.keys:
                self.keys.append(key)
        self.rows.append({"epoch": epoch, **logs})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["epoch", *self.keys], delimiter=self.separator,
                                lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        from lstmkit.models.distributed import is_main_process
        from lstmkit._io import write_atomic

        if is_main_process():
            write_atomic(self.filename, buffer.getvalue().encode())


def _set_lr(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _get_lr(optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of each epoch to ``schedule(epoch, lr)``.

    ``schedule`` may also take the epoch alone. Epochs count from 0.

    >>> halve_every_10 = LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch and epoch % 10 == 0 else lr)
    """

    def __init__(self, schedule: Callable, verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: `schedule` must be a callable (epoch, lr) -> lr, "
                            f"got {type(schedule).__name__}.")
        self.schedule = schedule
        self.verbose = verbose
        try:
            self._takes_lr = len(inspect.signature(schedule).parameters) >= 2
        except (TypeError, ValueError):
            self._takes_lr = True

    def on_epoch_begin(self, epoch, logs=None) -> None:
        optimizer = self.model.optimizer
        lr = _get_lr(optimizer)
        new = self.schedule(epoch, lr) if self._takes_lr else self.schedule(epoch)
        if isinstance(new, bool) or not isinstance(new, (int, float)) or not math.isfinite(new):
            raise ValueError(f"LearningRateScheduler: `schedule` must return a finite number, got {new!r} "
                             f"at epoch {epoch}.")
        _set_lr(optimizer, float(new))
        (logger.info if self.verbose else logger.debug)("Epoch %d: learning rate %.6g", epoch + 1, new)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when ``monitor`` stops improving for ``patience`` epochs.

    >>> plateau = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3, min_lr=1e-5)
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, mode: str = "auto",
                 min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0, verbose: int = 0):
        super().__init__()
        self.factor = check_float("ReduceLROnPlateau", "factor", factor, low=0.0, high=1.0, high_inclusive=False)
        if self.factor == 0.0:
            raise ValueError("ReduceLROnPlateau: `factor` must be in (0, 1), got 0.0.")
        self.monitor = monitor
        self.tracker = _Monitor("ReduceLROnPlateau", monitor, mode, check_float("ReduceLROnPlateau", "min_delta", min_delta))
        self.patience = check_int("ReduceLROnPlateau", "patience", patience, minimum=0)
        self.cooldown = check_int("ReduceLROnPlateau", "cooldown", cooldown, minimum=0)
        self.min_lr = check_float("ReduceLROnPlateau", "min_lr", min_lr, low=0.0)
        self.verbose = verbose
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None) -> None:
        value = self.tracker.current(logs)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.tracker.improved(value):
            self.tracker.best = value
            self.wait = 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            optimizer = self.model.optimizer
            old = _get_lr(optimizer)
            new = max(old * self.factor, self.min_lr)
            if new < old:
                _set_lr(optimizer, new)
                (logger.info if self.verbose else logger.debug)(
                    "ReduceLROnPlateau: epoch %d, %s has not improved for %d epochs; learning rate %.3g -> %.3g.",
                    epoch + 1, self.monitor, self.wait, old, new)
            self.cooldown_counter = self.cooldown
            self.wait = 0

    def state_dict(self):
        return {"wait": self.wait, "best": self.tracker.best, "cooldown_counter": self.cooldown_counter}

    def load_state_dict(self, state):
        self.wait = state.get("wait", 0)
        self.tracker.best = state.get("best", self.tracker.best)
        self.cooldown_counter = state.get("cooldown_counter", 0)


__all__ = ["Callback", "CSVLogger", "EarlyStopping", "History", "LearningRateScheduler", "ModelCheckpoint",
           "ReduceLROnPlateau"]
