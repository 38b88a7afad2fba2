"""The `>>>` examples in lstmkit.data and lstmkit.datasets run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = ["lstmkit.data.windows", "lstmkit.data.encoding", "lstmkit.data.differencing",
           "lstmkit.data.scaling", "lstmkit.data.padding", "lstmkit.data.splits", "lstmkit.data.bptt",
           "lstmkit.data.pipeline", "lstmkit.datasets"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    extraglobs = {"np": importlib.import_module("numpy"), "pd": importlib.import_module("pandas")}
    result = doctest.testmod(module, extraglobs=extraglobs, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
