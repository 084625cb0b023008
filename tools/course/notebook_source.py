"""Read solution code out of the source notebooks, the one place it is written.

Whatever needs the reference implementation (the pretrained model's training, the
mutation tests) takes it from here instead of keeping a copy.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

import resnets_utils

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
BLOCKS_NOTEBOOK = NOTEBOOKS / "02_residual_blocks.ipynb"
RESNET_NOTEBOOK = NOTEBOOKS / "03_resnet50.ipynb"
TRAINING_NOTEBOOK = NOTEBOOKS / "04_training.ipynb"
PHOTO_NOTEBOOK = NOTEBOOKS / "05_your_own_image.ipynb"


def solution_source(grade_id: str, notebook: Path = BLOCKS_NOTEBOOK) -> str:
    """Return the source of the cell whose nbgrader grade_id is `grade_id`."""
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return cell.source
    raise LookupError(f"{notebook.name} has no cell with grade_id '{grade_id}'")


def reference_resnet50():
    """Return the notebooks' reference `ResNet50` function, with the blocks it calls."""
    return resnets_utils.functions_from(RESNET_NOTEBOOK, "ResNet50")


def training_recipe():
    """Return notebook 4's `compile_for_short_training(model, steps_per_epoch, epochs, peak_learning_rate,
    label_smoothing=0.1)` and `warmup_cosine(steps_per_epoch, epochs, peak_learning_rate)`: the recipe as
    the student reads it."""
    return resnets_utils.functions_from(TRAINING_NOTEBOOK, "compile_for_short_training", "warmup_cosine")


def intersection_over_union():
    """Return notebook 5's `intersection_over_union(a, b)` of two boxes (left, top, right, bottom): how the
    kit judges its hand finder is how the student learns to."""
    return resnets_utils.functions_from(PHOTO_NOTEBOOK, "intersection_over_union")


def notebook_constant(name: str, notebook: Path = TRAINING_NOTEBOOK):
    """Return the value of the first `NAME = <literal>` line in the notebook's code, such as notebook 4's EPOCHS."""
    import ast

    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.parse(cell.source).body:
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]:
                return ast.literal_eval(node.value)
    raise LookupError(f"{notebook.name} sets no constant {name}")
