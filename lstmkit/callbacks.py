"""Callbacks for ``fit``: ``from lstmkit.callbacks import EarlyStopping, ModelCheckpoint, ...``.

The implementations live in :mod:`lstmkit.models.callbacks`.
"""

from lstmkit.models.callbacks import (Callback, CSVLogger, EarlyStopping, History, LearningRateScheduler,
                                      ModelCheckpoint, ReduceLROnPlateau)

__all__ = ["Callback", "CSVLogger", "EarlyStopping", "History", "LearningRateScheduler", "ModelCheckpoint",
           "ReduceLROnPlateau"]
