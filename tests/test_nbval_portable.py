"""nbval checks what every machine computes identically, and the claims for the rest."""

from __future__ import annotations

import re

import nbformat

from tests.notebook_claims import CLAIMS
from tools.course.nbval_portable import OUT_TOLERANCE, out_values_close
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


def test_claims_name_existing_notebooks_and_variables_they_define():
    names = {path.name: path for path in NOTEBOOKS}
    for notebook, claims in CLAIMS.items():
        assert notebook in names, f"a claim names {notebook}, which is not in notebooks/"
        code = "\n".join(c.source for c in nbformat.read(names[notebook], as_version=4).cells if c.cell_type == "code")
        for claim in claims:
            for name in re.findall(r"\b([A-Za-z_]\w*)\[", claim.holds):
                assert re.search(rf"\b{name}\b\s*(\[[^\]]*\])?\s*=", code), f"{notebook}: the claim '{claim.says}' uses {name}, which the notebook never sets"
