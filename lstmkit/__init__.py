"""lstmkit: sequence prediction with Long Short-Term Memory networks, on PyTorch.

The package follows the data flow: ``lstmkit.data`` (preparation) -> ``lstmkit.cells`` (one time
step of each cell family) -> ``lstmkit.engine`` (a cell over a whole sequence, fast) ->
``lstmkit.layers`` -> ``lstmkit.models`` (define, compile, fit, evaluate, predict) -> applications
and the ``lstmkit`` command. A lower layer never imports a higher one.
"""

from lstmkit._version import __version__

__all__ = ["__version__"]
