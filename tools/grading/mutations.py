"""A catalogue of realistic wrong solutions, each the reference solution with one small edit,
and of correct solutions written another way.

The tests use it to prove the public checks name each mistake and the hidden tests take
points for it, and that the correct variants keep full marks; `make bench-grade` uses the
mistakes to make a class of plausible submissions. Each edit must still apply to the
solution in the source notebooks (checked), so the catalogue follows the reference code
wherever it changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import nbformat

from tools.course.notebook_source import BLOCKS_NOTEBOOK, PHOTO_NOTEBOOK, RESNET_NOTEBOOK, TRAINING_NOTEBOOK, solution_source


def _notebook(grade_id: str):
    return RESNET_NOTEBOOK if grade_id == "resnet50" else BLOCKS_NOTEBOOK


def _edited(name: str, grade_id: str, edits) -> str:
    """The solution cell `grade_id` with each (old, new, count) edit made; LookupError if one no longer applies."""
    source = solution_source(grade_id, _notebook(grade_id))
    for old, new, count in edits:
        if old not in source:
            raise LookupError(f"'{name}' no longer applies to the solution: {old!r}")
        source = source.replace(old, new, count)
    return source


@dataclass(frozen=True)
class Mutation:
    name: str
    grade_id: str  # the solution cell it edits
    old: str
    new: str
    message: str  # what the public check says about it
    count: int = 1  # how many occurrences of `old` to replace; -1 for all

    @property
    def notebook(self):
        return _notebook(self.grade_id)

    def source(self) -> str:
        """The solution cell with this mistake in it."""
        return _edited(self.name, self.grade_id, [(self.old, self.new, self.count)])


@dataclass(frozen=True)
class Variant:
    """A correct solution written another way: the public and the hidden tests must pass it."""

    name: str
    grade_id: str
    edits: tuple[tuple[str, str], ...]  # (old, new), every occurrence replaced

    @property
    def notebook(self):
        return _notebook(self.grade_id)

    def source(self) -> str:
        return _edited(self.name, self.grade_id, [(old, new, -1) for old, new in self.edits])


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
    # BatchNorm's training flag: left out (as older versions of the assignment wrote it) or hard-coded.
    *[mutation
      for part in ("2a", "2b", "2c")
      for mutation in _both_blocks(f"BatchNorm {part} without training=", f"name=bn_name_base + '{part}')(X, training=training)",
                                   f"name=bn_name_base + '{part}')(X)",
                                   f"BatchNorm '{part}' ignores the training argument: it is called without training=")],
    Mutation("shortcut BatchNorm without training=", "convolutional_block",
             "name=bn_name_base + '1')(X_shortcut, training=training)", "name=bn_name_base + '1')(X_shortcut)",
             "BatchNorm '1' ignores the training argument: it is called without training="),
    *[Mutation(f"every BatchNorm with training={value} ({grade_id})", grade_id, "training=training)", f"training={value})",
               f"ignores the training argument: built with training={not value}, it is called with training={value}", count=-1)
      for value in (True, False) for grade_id in ("identity_block", "convolutional_block")],
    Mutation("block 3b called without training=", "resnet50", "stage=3, block='b', training=training)", "stage=3, block='b')",
             "block '3b' ignores the training argument"),
    Mutation("block 3a called without training=", "resnet50", "stage=3, block='a', s=2, training=training)",
             "stage=3, block='a', s=2)", "block '3a' ignores the training argument"),
    Mutation("block 4a called with training=True", "resnet50", "stage=4, block='a', s=2, training=training)",
             "stage=4, block='a', s=2, training=True)", "block '4a' ignores the training argument"),
    Mutation("block 5c called with training=False", "resnet50", "stage=5, block='c', training=training)",
             "stage=5, block='c', training=False)", "block '5c' ignores the training argument"),
]

_STAGE_3 = """    X = convolutional_block(X, f=3, filters=[128, 128, 512], stage=3, block='a', s=2, training=training)
    X = identity_block(X, 3, [128, 128, 512], stage=3, block='b', training=training)
    X = identity_block(X, 3, [128, 128, 512], stage=3, block='c', training=training)
    X = identity_block(X, 3, [128, 128, 512], stage=3, block='d', training=training)
"""
_STAGE_4 = """    X = convolutional_block(X, f=3, filters=[256, 256, 1024], stage=4, block='a', s=2, training=training)
    X = identity_block(X, 3, [256, 256, 1024], stage=4, block='b', training=training)
    X = identity_block(X, 3, [256, 256, 1024], stage=4, block='c', training=training)
    X = identity_block(X, 3, [256, 256, 1024], stage=4, block='d', training=training)
    X = identity_block(X, 3, [256, 256, 1024], stage=4, block='e', training=training)
    X = identity_block(X, 3, [256, 256, 1024], stage=4, block='f', training=training)
"""
_STAGE_5 = """    X = convolutional_block(X, f=3, filters=[512, 512, 2048], stage=5, block='a', s=2, training=training)
    X = identity_block(X, 3, [512, 512, 2048], stage=5, block='b', training=training)
    X = identity_block(X, 3, [512, 512, 2048], stage=5, block='c', training=training)
"""
_SHORTCUT = """    X_shortcut = Conv2D(filters=F3, kernel_size=(1, 1), strides=(s, s), padding='valid', name=conv_name_base + '1', kernel_initializer=glorot_uniform(seed=0))(X_shortcut)
    X_shortcut = BatchNormalization(axis=3, name=bn_name_base + '1')(X_shortcut, training=training)
"""
_BRIEF = {  # positional arguments, default strides and padding left out, BatchNorm's default axis=-1
    "identity_block": (("Conv2D(filters=F1, kernel_size=(1, 1), strides=(1, 1), padding='valid', ", "Conv2D(F1, (1, 1), "),),
    "convolutional_block": (
        ("Conv2D(filters=F1, kernel_size=(1, 1), strides=(s, s), padding='valid', ", "Conv2D(F1, (1, 1), strides=(s, s), "),
        ("Conv2D(filters=F3, kernel_size=(1, 1), strides=(s, s), padding='valid', ", "Conv2D(F3, 1, strides=s, "),
    ),
}
_BRIEF_BOTH = (
    ("Conv2D(filters=F2, kernel_size=(f, f), strides=(1, 1), padding='same', ", "Conv2D(F2, (f, f), padding='same', "),
    ("Conv2D(filters=F3, kernel_size=(1, 1), strides=(1, 1), padding='valid', ", "Conv2D(F3, (1, 1), "),
    ("glorot_uniform(seed=0)", "glorot_uniform(0)"),
    ("BatchNormalization(axis=3, ", "BatchNormalization("),
)
_RELU_LAYERS = (("Activation('relu')", "ReLU()"), ("    X_shortcut = X\n", "    from tensorflow.keras.layers import ReLU\n    X_shortcut = X\n"))
_KEYWORDS_REORDERED = (  # the same calls with their keywords in another order
    ("BatchNormalization(axis=3, name=bn_name_base + '2b')(X, training=training)",
     "BatchNormalization(name=bn_name_base + '2b', axis=3)(training=training, inputs=X)"),
    ("Conv2D(filters=F2, kernel_size=(f, f), strides=(1, 1), padding='same', name=conv_name_base + '2b', kernel_initializer=glorot_uniform(seed=0))",
     "Conv2D(name=conv_name_base + '2b', kernel_initializer=glorot_uniform(seed=0), padding='same', kernel_size=(f, f), filters=F2)"),
)

CORRECT_VARIANTS: list[Variant] = [
    *[Variant(f"{name} ({grade_id})", grade_id, edits)
      for grade_id in ("identity_block", "convolutional_block")
      for name, edits in (
          ("positional arguments, defaults left out", _BRIEF[grade_id] + _BRIEF_BOTH),
          ("ReLU() for Activation('relu')", _RELU_LAYERS),
          ("Add()([X_shortcut, X])", (("Add()([X, X_shortcut])", "Add()([X_shortcut, X])"),)),
          ("keywords in another order", _KEYWORDS_REORDERED),
      )],
    Variant("the shortcut path written first", "convolutional_block",
            ((_SHORTCUT, ""), ("    X_shortcut = X\n", "    X_shortcut = X\n" + _SHORTCUT))),
    Variant("loops over the block letters", "resnet50", (
        (_STAGE_3, """    X = convolutional_block(X, f=3, filters=[128, 128, 512], stage=3, block='a', s=2, training=training)
    for block in 'bcd':
        X = identity_block(X, 3, [128, 128, 512], stage=3, block=block, training=training)
"""),
        (_STAGE_4, """    X = convolutional_block(X, f=3, filters=[256, 256, 1024], stage=4, block='a', s=2, training=training)
    for block in ['b', 'c', 'd', 'e', 'f']:
        X = identity_block(X, 3, [256, 256, 1024], stage=4, block=block, training=training)
"""),
        (_STAGE_5, """    X = convolutional_block(X, f=3, filters=[512, 512, 2048], stage=5, block='a', s=2, training=training)
    for block in 'bc':
        X = identity_block(X, 3, [512, 512, 2048], stage=5, block=block, training=training)
"""),
    )),
    Variant("stages 3 to 5 as a table, with keyword arguments", "resnet50", (
        (_STAGE_3, """    for stage, filters, blocks in ((3, [128, 128, 512], 'abcd'), (4, [256, 256, 1024], 'abcdef'), (5, [512, 512, 2048], 'abc')):
        X = convolutional_block(X, f=3, filters=filters, stage=stage, block='a', s=2, training=training)
        for block in blocks[1:]:
            X = identity_block(X, f=3, filters=filters, stage=stage, block=block, training=training)
"""),
        (_STAGE_4, ""), (_STAGE_5, ""),
        ("AveragePooling2D((2, 2), name='avg_pool')", "AveragePooling2D(pool_size=(2, 2), name='avg_pool')"),
    )),
]

# The optional exercise of notebook 2: not graded, but its test must name these mistakes too.
OPTIONAL_MUTATIONS: list[Mutation] = [
    Mutation("a ReLU after the addition", "preactivation_block", "    X = Add()([X, X_shortcut])\n",
             "    X = Add()([X, X_shortcut])\n    X = Activation('relu')(X)\n", "nothing comes after the addition"),
    Mutation("conv before BatchNorm, as in the original block", "preactivation_block",
             """    X = BatchNormalization(axis=3, name=bn_name_base + '2a')(X, training=training)
    X = Activation('relu')(X)
    X = Conv2D(filters=F1, kernel_size=(1, 1), strides=(1, 1), padding='valid', name=conv_name_base + '2a', kernel_initializer=glorot_uniform(seed=0))(X)
""", """    X = Conv2D(filters=F1, kernel_size=(1, 1), strides=(1, 1), padding='valid', name=conv_name_base + '2a', kernel_initializer=glorot_uniform(seed=0))(X)
    X = BatchNormalization(axis=3, name=bn_name_base + '2a')(X, training=training)
    X = Activation('relu')(X)
""", "BatchNorm '2a' must come first in its step, on the block's input X"),
    Mutation("BatchNorm 2c without training=", "preactivation_block", "name=bn_name_base + '2c')(X, training=training)",
             "name=bn_name_base + '2c')(X)", "BatchNorm '2c' ignores the training argument"),
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
        "preactivation_block": solution_source("preactivation_block"),  # the optional exercises, not graded
        "refresh_batchnorm_averages": solution_source("refresh_batchnorm_averages", TRAINING_NOTEBOOK),
        "intersection_over_union": solution_source("intersection_over_union", PHOTO_NOTEBOOK),
    }
