"""Later notebooks take your functions from earlier ones: only definitions run, and problems are named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import resnets_utils


def write_notebook(path: Path, *sources: str) -> Path:
    nbformat.write(new_notebook(cells=[new_code_cell(source) for source in sources]), path)
    return path


def test_it_returns_your_functions_without_running_tests_or_demos(tmp_path):
    path = write_notebook(
        tmp_path / "earlier.ipynb",
        "import math\n%matplotlib inline",
        "def area(r):\n    return math.pi * r * r",
        "raise AssertionError('a failing test')\nprint('a demo')",
    )
    area = resnets_utils.functions_from(path, "area")
    assert area(1) == pytest.approx(3.14159, abs=1e-4)


def test_several_names_come_back_as_a_tuple_and_chains_resolve_next_to_the_notebook(tmp_path, monkeypatch):
    write_notebook(tmp_path / "first.ipynb", "def one():\n    return 1")
    write_notebook(
        tmp_path / "second.ipynb",
        "import resnets_utils\none = resnets_utils.functions_from('first.ipynb', 'one')",
        "def two():\n    return one() + 1",
    )
    monkeypatch.chdir(Path("/"))  # the chain is read from the notebooks' folder, wherever you are
    one, two = resnets_utils.functions_from(tmp_path / "second.ipynb", "one", "two")
    assert (one(), two()) == (1, 2)


def test_a_missing_notebook_or_function_is_named(tmp_path):
    with pytest.raises(resnets_utils.NotebookError, match="nowhere.ipynb not found"):
        resnets_utils.functions_from(tmp_path / "nowhere.ipynb", "f")
    path = write_notebook(tmp_path / "empty.ipynb", "x = 1")
    with pytest.raises(resnets_utils.NotebookError, match="empty.ipynb defines no function f: write it there and save"):
        resnets_utils.functions_from(path, "f")


def test_a_syntax_error_names_the_cell_and_a_damaged_file_is_named(tmp_path):
    path = write_notebook(tmp_path / "broken.ipynb", "x = 1", "def f(:\n    pass")
    with pytest.raises(resnets_utils.NotebookError, match=r"broken.ipynb, code cell 2: .* line 1"):
        resnets_utils.functions_from(path, "f")
    (tmp_path / "damaged.ipynb").write_text("{not json")
    with pytest.raises(resnets_utils.NotebookError, match="damaged.ipynb is not a readable notebook"):
        resnets_utils.functions_from(tmp_path / "damaged.ipynb", "f")


def test_a_notebook_saved_in_nbformat_3_is_read_too(tmp_path):
    from nbformat import v3

    path = tmp_path / "old.ipynb"
    old = v3.new_notebook(worksheets=[v3.new_worksheet(cells=[v3.new_code_cell("def f():\n    return 3")])])
    path.write_text(v3.writes_json(old))
    assert resnets_utils.functions_from(path, "f")() == 3


def test_reading_a_jupyter_notebook_leaves_nbformat_unimported(tmp_path):
    """Importing nbformat costs about a second of CPU (jsonschema), in every kernel that calls functions_from."""
    path = write_notebook(tmp_path / "earlier.ipynb", "def f():\n    return 1")
    code = f"import sys, resnets_utils; assert resnets_utils.functions_from({str(path)!r}, 'f')() == 1; print('nbformat' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=resnets_utils.KIT_DIR)
    assert result.stdout.strip() == "False", result.stderr
