"""What notebooks 2 and 3 say about Keras 3 and do not print: each claim, checked on the smallest model that shows it."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.keras import Input, Model
from tensorflow.keras.layers import BatchNormalization, Conv2D, Dense, Flatten

X = np.random.default_rng(0).normal(2.0, 1.0, size=(4, 8, 8, 3)).astype(np.float32)


def conv_and_batchnorm(**call):
    """A conv, a BatchNorm called with `call`, and a Dense layer; returns (model, BatchNorm)."""
    inputs = Input((8, 8, 3))
    norm = BatchNormalization(axis=3)
    outputs = Dense(1)(Flatten()(norm(Conv2D(4, (3, 3))(inputs), **call)))
    model = Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    return model, norm


@pytest.mark.parametrize("training", [False, True])
def test_fit_uses_the_batch_statistics_whatever_flag_the_model_was_built_with(training):
    model, norm = conv_and_batchnorm(training=training)
    model.fit(X, np.zeros((4, 1)), epochs=1, verbose=0)
    assert not np.allclose(np.asarray(norm.moving_mean), 0.0), "fit left BatchNorm's moving mean untouched"


@pytest.mark.parametrize("training", [False, True])
def test_evaluate_and_predict_use_the_running_averages_whatever_flag_the_model_was_built_with(training):
    model, _ = conv_and_batchnorm(training=training)
    inference = np.asarray(model(X, training=False))
    assert np.allclose(model.predict(X, verbose=0), inference, atol=1e-5)
    assert model.evaluate(X, inference, verbose=0) < 1e-8


def test_a_batchnorm_called_on_a_tensor_without_training_uses_its_running_averages():
    conv = Conv2D(4, (3, 3))
    h = conv(X)
    assert np.allclose(BatchNormalization(axis=3)(h), BatchNormalization(axis=3)(h, training=False))


def test_a_frozen_batchnorm_runs_in_inference_mode_even_in_fit():
    model, norm = conv_and_batchnorm()
    norm.trainable = False
    model.compile(optimizer="sgd", loss="mse")
    model.fit(X, np.zeros((4, 1)), epochs=1, verbose=0)
    assert np.allclose(np.asarray(norm.moving_mean), 0.0)
    assert np.allclose(model(X, training=True), model(X, training=False))


def test_keras_applications_resnet50_without_its_top_takes_images_from_32x32_up():
    backbone = tf.keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    assert tuple(backbone.output.shape) == (None, 2048)
    with pytest.raises(ValueError, match="at least 32x32"):
        tf.keras.applications.ResNet50(include_top=False, weights=None, input_shape=(31, 31, 3))


def test_resnet_preprocess_input_changes_a_float_array_in_place():
    pixels = np.array([[[[255.0, 0.0, 0.0]]]])
    tf.keras.applications.resnet.preprocess_input(pixels)
    assert not np.allclose(pixels, [[[[255.0, 0.0, 0.0]]]])
