"""A wrong residual block or ResNet50 fails the public tests with a message that names the mistake.

Each wrong block is the notebook's own solution with one small edit, so the catalogue
follows the reference code wherever it changes.
"""

from __future__ import annotations

import re

import pytest

from tools.notebook_source import KERAS_IMPORTS, RESNET_NOTEBOOK, solution_source

SETUP = KERAS_IMPORTS + "import numpy as np\n"


def build(grade_id: str, old: str, new: str, s: int | None):
    """Exec the edited solution, wrap it in a Model on a (4, 4, 6) input and run the public check."""
    import resnets_utils

    source = solution_source(grade_id)
    assert old in source, f"the mutation no longer applies to the solution: {old!r}"
    namespace: dict = {}
    exec(SETUP + source.replace(old, new, 1), namespace)
    block = namespace[grade_id]
    kwargs = {"s": s} if s else {}
    model = resnets_utils.build_block(block, (4, 4, 6), f=2, filters=[2, 4, 6], stage=1, block="a", training=False, **kwargs)
    resnets_utils.check_residual_block(model, stage=1, block="a", f=2, filters=[2, 4, 6], **kwargs)


BOTH = [("identity_block", None), ("convolutional_block", 2)]
MAIN_PATH_MISTAKES = {
    "shortcut never added": ("X = Add()([X, X_shortcut])", "X = X", "the shortcut is never added"),
    "ReLU before the Add": (
        "name=bn_name_base + '2c')(X, training=training)",
        "name=bn_name_base + '2c')(X, training=training)\n    X = Activation('relu')(X)",
        "no ReLU before the Add",
    ),
    "padding 'valid' in 2b": ("padding='same', name=conv_name_base + '2b'", "padding='valid', name=conv_name_base + '2b'", "conv '2b' must use padding='same'"),
    "BatchNorm on the wrong axis": ("axis=3, name=bn_name_base + '2a'", "axis=1, name=bn_name_base + '2a'", "BatchNorm '2a' must normalize the channel axis"),
    "missing BatchNorm 2b": ("    X = BatchNormalization(axis=3, name=bn_name_base + '2b')(X, training=training)\n", "", "no BatchNorm named 'bn1a_branch2b'"),
    "F1 and F2 swapped": ("filters=F1,", "filters=F2,", "conv '2a' must have 2 filters"),
    "1x1 middle conv": ("kernel_size=(f, f)", "kernel_size=(1, 1)", "conv '2b' must have a 2x2 kernel"),
    "no final ReLU": ("X = Add()([X, X_shortcut])\n    X = Activation('relu')(X)", "X = Add()([X, X_shortcut])", "end with a ReLU applied after the Add"),
    "unseeded initializer": ("name=conv_name_base + '2c', kernel_initializer=glorot_uniform(seed=0)", "name=conv_name_base + '2c'", "conv '2c' must use kernel_initializer=glorot_uniform(seed=0)"),
}
SHORTCUT_MISTAKES = {
    "shortcut without BatchNorm": (
        "    X_shortcut = BatchNormalization(axis=3, name=bn_name_base + '1')(X_shortcut, training=training)\n",
        "",
        "no BatchNorm named 'bn1a_branch1'",
    ),
    "stride on the middle conv": (
        "strides=(s, s), padding='valid', name=conv_name_base + '2a'",
        "strides=(1, 1), padding='valid', name=conv_name_base + '2a'",
        "only conv '2a' and the shortcut conv '1' use the stride s",
    ),
    "shortcut conv without stride": (
        "strides=(s, s), padding='valid', name=conv_name_base + '1'",
        "strides=(1, 1), padding='valid', name=conv_name_base + '1'",
        "only conv '2a' and the shortcut conv '1' use the stride s",
    ),
}


@pytest.mark.parametrize("grade_id, s", BOTH)
def test_the_reference_blocks_pass_the_public_check(grade_id, s):
    build(grade_id, "X_shortcut = X", "X_shortcut = X", s)


@pytest.mark.parametrize("grade_id, s", BOTH)
@pytest.mark.parametrize("mistake", MAIN_PATH_MISTAKES)
def test_public_check_names_each_main_path_mistake(grade_id, s, mistake):
    old, new, message = MAIN_PATH_MISTAKES[mistake]
    with pytest.raises(AssertionError, match=re.escape(message)):
        build(grade_id, old, new, s)


@pytest.mark.parametrize("mistake", SHORTCUT_MISTAKES)
def test_public_check_names_each_shortcut_mistake(mistake):
    old, new, message = SHORTCUT_MISTAKES[mistake]
    with pytest.raises(AssertionError, match=re.escape(message)):
        build("convolutional_block", old, new, 2)


RESNET_MISTAKES = {
    "stage 5 with the wrong filters": ("filters=[512, 512, 2048], stage=5, block='a'", "filters=[512, 512, 1024], stage=5, block='a'", "stage 5 must use filters=[512, 512, 2048]"),
    "no average pool": ("    X = AveragePooling2D((2, 2), name='avg_pool')(X)\n", "", "there is no AveragePooling2D layer named 'avg_pool'"),
    "max pool instead of average pool": ("X = AveragePooling2D((2, 2), name='avg_pool')(X)", "X = MaxPooling2D((2, 2), name='avg_pool')(X)", "'avg_pool' must be AveragePooling2D((2, 2))"),
    "a missing identity block": ("    X = identity_block(X, 3, [256, 256, 1024], stage=4, block='f', training=training)\n", "", "stage 4 needs 6 blocks"),
    "stride 1 in stage 3": ("filters=[128, 128, 512], stage=3, block='a', s=2", "filters=[128, 128, 512], stage=3, block='a', s=1", "block '3a' must use s=2"),
}


@pytest.mark.parametrize("mistake", [None, *RESNET_MISTAKES])
def test_resnet50_public_check_names_each_mistake(mistake):
    import resnets_utils

    namespace: dict = {}
    exec(SETUP + solution_source("identity_block") + "\n" + solution_source("convolutional_block"), namespace)
    source = solution_source("resnet50", RESNET_NOTEBOOK)
    if mistake is None:
        exec(source, namespace)
        resnets_utils.check_resnet50(resnets_utils.build_resnet50(namespace["ResNet50"]), classes=6)
        return
    old, new, message = RESNET_MISTAKES[mistake]
    assert old in source, f"the mutation no longer applies to the solution: {old!r}"
    exec(source.replace(old, new, 1), namespace)
    with pytest.raises(AssertionError, match=re.escape(message)):
        resnets_utils.check_resnet50(resnets_utils.build_resnet50(namespace["ResNet50"]), classes=6)
