"""nbval checks what every machine computes identically, and the claims for the rest."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from resnets_utils import KIT_DIR
from tests.notebook_claims import CLAIMS
from tools.course.nbval_portable import GRAPHVIZ_FALLBACK, OUT_TOLERANCE, drew_the_fallback, out_values_close
from tests.test_notebooks import NOTEBOOKS


def test_out_values_within_the_hidden_tests_tolerance_are_equal():
    assert out_values_close("out = [0.0, 1.3455]\n", f"out = [0.0, {1.3455 + OUT_TOLERANCE / 2}]\n")


def test_out_values_beyond_the_tolerance_differ():
    assert not out_values_close("out = [0.0, 1.3455]\n", "out = [0.0, 1.3457]\n")
    assert not out_values_close("out = [0.0, 1.3455]\n", "out = [0.0, 1.3455, 2.0]\n")
    assert not out_values_close("out = [0.0]\nout = [1.0]\n", "out = [0.0]\n")


def test_every_notebook_whose_digits_nbval_ignores_has_claims_checked_instead():
    for path in NOTEBOOKS:
        ignored = [c for c in nbformat.read(path, as_version=4).cells if "nbval-ignore-output" in c.metadata.get("tags", [])]
        assert not ignored or CLAIMS.get(path.name), f"{path.name} ignores outputs but no claim checks them"


def indexed_notebook_names(expression: str) -> set[str]:
    """The variables a claim indexes (`history[...]`) that it does not bind itself (comprehension variables,
    lambda parameters): the notebook must set them. Attributes (`model.layers[-1]`) are the object's."""
    indexed, bound = set(), set()
    for node in ast.walk(ast.parse(expression, mode="eval")):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            indexed.add(node.value.id)
        elif isinstance(node, ast.comprehension):
            bound |= {name.id for name in ast.walk(node.target) if isinstance(name, ast.Name)}
        elif isinstance(node, ast.Lambda):
            bound |= {argument.arg for argument in node.args.args}
    return indexed - bound


def test_claims_name_existing_notebooks_and_variables_they_define():
    names = {path.name: path for path in NOTEBOOKS}
    for notebook, claims in CLAIMS.items():
        assert notebook in names, f"a claim names {notebook}, which is not in notebooks/"
        code = "\n".join(c.source for c in nbformat.read(names[notebook], as_version=4).cells if c.cell_type == "code")
        for claim in claims:
            for name in indexed_notebook_names(claim.holds):
                assert re.search(rf"\b{name}\b\s*(\[[^\]]*\])?\s*=", code), f"{notebook}: the claim '{claim.says}' uses {name}, which the notebook never sets"


def test_a_diagram_cell_is_the_text_summary_where_graphviz_is_missing():
    fallback = [{"output_type": "stream", "name": "stdout", "text": f"{GRAPHVIZ_FALLBACK}, so here is the text summary\n"}]
    assert drew_the_fallback(fallback)
    assert not drew_the_fallback([{"output_type": "stream", "name": "stdout", "text": "Model: tiny\n"}])


def test_nbval_passes_a_stored_diagram_on_a_machine_without_graphviz(tmp_path):
    """A student without graphviz runs `make test`: the diagram cell must run, and print the text summary."""
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(
        "import keras, resnets_utils\n"
        "model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name='tiny_dense')], name='tiny')\n"
        "resnets_utils.draw_model(model, 'tiny.png')")
    cell.execution_count = 1
    cell.outputs = [nbformat.v4.new_output("execute_result", {"image/png": "iVBORw0KGgo=", "text/plain": "<Image>"},
                                           execution_count=1)]
    notebook.cells = [cell]
    nbformat.write(notebook, tmp_path / "diagram.ipynb")
    no_graphviz = {**os.environ, "PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(KIT_DIR)}
    assert shutil.which("dot", path=no_graphviz["PATH"]) is None
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "tools.course.nbval_portable", "-p", "no:cacheprovider",
                          "--nbval", "--nbval-current-env", "diagram.ipynb"],
                         cwd=tmp_path, env=no_graphviz, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
