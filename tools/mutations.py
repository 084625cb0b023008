"""A catalogue of realistic wrong solutions, each the reference solution with one small edit.

The tests use it to prove the public checks name each mistake and the hidden tests take
points for it; `make bench-grade` uses it to make a class of plausible submissions. Each
edit must still apply to the solution in the source notebooks (checked), so the catalogue
follows the reference code wherever it changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import nbformat

from tools.notebook_source import BLOCKS_NOTEBOOK, RESNET_NOTEBOOK, solution_source


@dataclass(frozen=True)
class Mutation:
    name: str
    grade_id: str  # the solution cell it edits
    old: str
    new: str
    message: str  # what the public check says about it

    @property
    def notebook(self):
        return RESNET_NOTEBOOK if self.grade_id == "resnet50" else BLOCKS_NOTEBOOK

    def source(self) -> str:
        """The solution cell with this mistake in it."""
        original = solution_source(self.grade_id, self.notebook)
        if self.old not in original:
            raise LookupError(f"the mutation '{self.name}' no longer applies to the solution: {self.old!r}")
        return original.replace(self.old, self.new, 1)


def _both_blocks(name: str, old: str, new: str, message: str) -> list[Mutation]:
    return [Mutation(f"{name} ({grade_id})", grade_id, old, new, message)
            for grade_id in ("identity_block", "convolutional_block")]


MUTATIONS: list[Mutation] = [
    *_both_blocks("shortcut never added", "X = Add()([X, X_shortcut])", "X = X", "the shortcut is never added"),
    *_both_blocks(
        "ReLU before the Add",
        "name=bn_name_base + '2c')(X, training=training)",
        "name=bn_name_base + '2c')(X, training=training)\n    X = Activation('relu')(X)",
        "no ReLU before the Add",
    ),
    *_both_blocks("padding 'valid' in 2b", "padding='same', name=conv_name_base + '2b'",
                  "padding='valid', name=conv_name_base + '2b'", "conv '2b' must use padding='same'"),
    *_both_blocks("BatchNorm on the wrong axis", "axis=3, name=bn_name_base + '2a'", "axis=1, name=bn_name_base + '2a'",
                  "BatchNorm '2a' must normalize the channel axis"),
    *_both_blocks("missing BatchNorm 2b", "    X = BatchNormalization(axis=3, name=bn_name_base + '2b')(X, training=training)\n",
                  "", "no BatchNorm named 'bn1a_branch2b'"),
    *_both_blocks("F1 and F2 swapped", "filters=F1,", "filters=F2,", "conv '2a' must have 2 filters"),
    *_both_blocks("1x1 middle conv", "kernel_size=(f, f)", "kernel_size=(1, 1)", "conv '2b' must have a 2x2 kernel"),
    *_both_blocks("no final ReLU", "X = Add()([X, X_shortcut])\n    X = Activation('relu')(X)", "X = Add()([X, X_shortcut])",
                  "end with a ReLU applied after the Add"),
    *_both_blocks("unseeded initializer", "name=conv_name_base + '2c', kernel_initializer=glorot_uniform(seed=0)",
                  "name=conv_name_base + '2c'", "conv '2c' must use kernel_initializer=glorot_uniform(seed=0)"),
    Mutation("shortcut without BatchNorm", "convolutional_block",
             "    X_shortcut = BatchNormalization(axis=3, name=bn_name_base + '1')(X_shortcut, training=training)\n", "",
             "no BatchNorm named 'bn1a_branch1'"),
    Mutation("stride on the middle conv", "convolutional_block", "strides=(s, s), padding='valid', name=conv_name_base + '2a'",
             "strides=(1, 1), padding='valid', name=conv_name_base + '2a'",
             "only conv '2a' and the shortcut conv '1' use the stride s"),
    Mutation("shortcut conv without stride", "convolutional_block", "strides=(s, s), padding='valid', name=conv_name_base + '1'",
             "strides=(1, 1), padding='valid', name=conv_name_base + '1'",
             "only conv '2a' and the shortcut conv '1' use the stride s"),
    Mutation("stage 5 with the wrong filters", "resnet50", "filters=[512, 512, 2048], stage=5, block='a'",
             "filters=[512, 512, 1024], stage=5, block='a'", "stage 5 must use filters=[512, 512, 2048]"),
    Mutation("no average pool", "resnet50", "    X = AveragePooling2D((2, 2), name='avg_pool')(X)\n", "",
             "there is no AveragePooling2D layer named 'avg_pool'"),
    Mutation("max pool instead of average pool", "resnet50", "X = AveragePooling2D((2, 2), name='avg_pool')(X)",
             "X = MaxPooling2D((2, 2), name='avg_pool')(X)", "'avg_pool' must be AveragePooling2D((2, 2))"),
    Mutation("a missing identity block", "resnet50",
             "    X = identity_block(X, 3, [256, 256, 1024], stage=4, block='f', training=training)\n", "",
             "stage 4 needs 6 blocks"),
    Mutation("stride 1 in stage 3", "resnet50", "filters=[128, 128, 512], stage=3, block='a', s=2",
             "filters=[128, 128, 512], stage=3, block='a', s=1", "block '3a' must use s=2"),
]


def fill_in(release_notebook, solutions: dict[str, str]) -> nbformat.NotebookNode:
    """A student's notebook: the release version with the given solution cells written in."""
    notebook = nbformat.read(release_notebook, as_version=4)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in solutions:
            cell.source = solutions[grade_id]
    return notebook


def reference_solutions() -> dict[str, str]:
    """Every solution cell as the source notebooks write it."""
    return {
        "identity_block": solution_source("identity_block"),
        "convolutional_block": solution_source("convolutional_block"),
        "resnet50": solution_source("resnet50", RESNET_NOTEBOOK),
    }
