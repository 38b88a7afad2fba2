"""The examples in docs/data.md run."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "data.md"


@pytest.mark.skipif(not DOC.exists(), reason="docs/ is not part of an installed package")
def test_docs_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert "(81, 12, 1) (81, 3) (34, 12, 1)" in out
    assert "[340. 318. 362.]" in out
    assert "(270, 29, 12) (270, 29) [20 26 22 20 21]" in out
