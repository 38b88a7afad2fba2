"""Exceptions raised by lstmkit.

Bad arguments raise the built-in ``TypeError`` / ``ValueError`` with a message that names the
argument, says what was expected and what arrived, and how to fix it. Calling things in the wrong
order (predict before fit, fit before compile) raises a subclass of ``RuntimeError`` defined here,
whose message says what to call first.
"""


class NotBuiltError(RuntimeError):
    """A layer or model was used in a way that needs its weights before they exist."""


class NotCompiledError(RuntimeError):
    """A model was trained or evaluated before ``compile()``."""


class NotFittedError(RuntimeError):
    """A transformer or forecaster was used before ``fit()``."""


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite during training."""
