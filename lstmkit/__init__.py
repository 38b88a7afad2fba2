"""lstmkit: sequence prediction with Long Short-Term Memory networks, on PyTorch.

The package follows the data flow: ``lstmkit.data`` (preparation) -> ``lstmkit.cells`` (one time
step of each cell family) -> ``lstmkit.engine`` (a cell over a whole sequence, fast) ->
``lstmkit.layers`` -> ``lstmkit.models`` (define, compile, fit, evaluate, predict) -> applications
and the ``lstmkit`` command. A lower layer never imports a higher one.
"""

from lstmkit._version import __version__

__all__ = ["__version__"]

# The life-cycle API, imported on first use so that `lstmkit --help` stays fast (no torch import).
_LAZY = {"Sequential": "lstmkit.models", "Model": "lstmkit.models", "load_model": "lstmkit.models",
         "set_seed": "lstmkit.models", "callbacks": "lstmkit.callbacks", "layers": "lstmkit.layers",
         "models": "lstmkit.models", "forecast": "lstmkit.forecast",
         "retain_freed_memory": "lstmkit.engine.allocator"}
__all__ += ["Sequential", "Model", "load_model", "set_seed", "callbacks", "retain_freed_memory"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        return module if module.__name__ == f"lstmkit.{name}" else getattr(module, name)
    raise AttributeError(f"module 'lstmkit' has no attribute {name!r}")
