"""Every `>>>` example in the package's docstrings runs and shows what it says."""

import doctest
import importlib
import pkgutil

import pytest

import lstmkit

# Modules that need packages lstmkit does not depend on (kept for provenance, run by hand).
SKIP = {"lstmkit.datasets.extract"}

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(lstmkit.__path__, prefix="lstmkit.") if m.name not in SKIP
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
