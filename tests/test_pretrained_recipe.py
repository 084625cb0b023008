"""The pretrained model's recipe trains the notebooks' own ResNet50 on a sound input pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import resnets_utils
from tools.model import train_pretrained
from tools.course.notebook_source import reference_resnet50, training_recipe


def test_recipe_builds_resnet50_from_the_source_notebooks():
    model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
    resnets_utils.check_resnet50(model, classes=6)


def test_training_pipeline_yields_preprocessed_augmented_batches_with_one_hot_labels():
    images = np.random.default_rng(0).integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)
    batches = list(resnets_utils.training_pipeline(images, np.arange(10) % 6, batch_size=4))
    assert [int(x.shape[0]) for x, _ in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.shape[1:] == (64, 64, 3) and 0.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0
    assert y.shape == (4, 6) and np.allclose(np.sum(y, axis=1), 1.0)


def test_without_augmentation_the_pipeline_feeds_exactly_what_preprocess_makes():
    images = np.random.default_rng(0).integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)
    labels = np.arange(12).reshape(1, 12) % 6  # the SIGNS files' row of labels
    x, y = next(iter(resnets_utils.training_pipeline(images, labels, batch_size=12, augment=False)))
    order = [int(np.argmin(np.abs(resnets_utils.preprocess(images) - image).sum(axis=(1, 2, 3)))) for image in np.asarray(x)]
    assert sorted(order) == list(range(12))
    assert np.allclose(np.asarray(x), resnets_utils.preprocess(images)[order])
    assert np.asarray(y).argmax(axis=1).tolist() == [labels[0, i] for i in order]


def test_training_pipeline_does_not_autotune_so_epochs_start_without_idle_waits():
    """With tf.data's autotuning on, an epoch's first step often waited with the CPU idle (resnets_utils says how long)."""
    images = np.zeros((4, 64, 64, 3), dtype=np.uint8)
    pipeline = train_pretrained.with_no_hand_targets(resnets_utils.training_pipeline(images, np.arange(4) % 6))
    assert pipeline.options().autotune.enabled is False


def test_load_pretrained_names_the_missing_file(tmp_path):
    import pytest

    with pytest.raises(resnets_utils.ModelFileError, match=r"not found: .*nothing\.json.*make pretrained"):
        resnets_utils.load_pretrained(tmp_path / "nothing")


def test_load_pretrained_names_a_damaged_file(tmp_path):
    import pytest

    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "broken.npz").write_bytes(b"nope")
    with pytest.raises(resnets_utils.ModelFileError, match=r"broken\.json/\.npz cannot be loaded"):
        resnets_utils.load_pretrained(tmp_path / "broken")


def test_load_your_model_says_to_run_notebook_4_when_its_file_is_missing_or_cut_short(tmp_path):
    with pytest.raises(resnets_utils.ModelFileError, match=r"my\.keras not found: run notebook 4 to its end"):
        resnets_utils.load_your_model(tmp_path / "my.keras")
    (tmp_path / "my.keras").write_bytes(b"PK\x03\x04 a save cut short")
    with pytest.raises(resnets_utils.ModelFileError, match=r"my\.keras cannot be loaded .*run notebook 4 to its end again"):
        resnets_utils.load_your_model(tmp_path / "my.keras")


def test_load_your_model_reads_what_model_save_wrote(tmp_path):
    import tensorflow as tf

    model = small_batchnorm_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.save(tmp_path / "my.keras")
    x = np.random.default_rng(5).normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(resnets_utils.load_your_model(tmp_path / "my.keras").predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-6)


def test_your_model_computes_in_float32_on_any_cpu_though_trained_in_bfloat16(tmp_path):
    """Notebook 4 trains in bfloat16 where the CPU has it, and the file keeps that precision; with oneDNN
    held to AVX2, as on a laptop without bfloat16, notebook 5 then failed to read a photo with it."""
    import keras

    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Flatten(dtype="mixed_bfloat16")(keras.layers.Conv2D(4, 3, dtype="mixed_bfloat16")(inputs))
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax", dtype="mixed_bfloat16")(features)).save(tmp_path / "my.keras")
    loaded = resnets_utils.load_your_model(tmp_path / "my.keras")
    assert {layer.dtype_policy.name for layer in [loaded, *loaded.layers]} == {"float32"}
    assert loaded.predict(np.ones((1, 8, 8, 3), np.float32), verbose=0).dtype == np.float32


def test_exported_model_loads_as_float32_and_predicts_like_the_trained_one(tmp_path):
    model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
    train_pretrained.export(model, tmp_path / "m")
    loaded = resnets_utils.load_pretrained(tmp_path / "m")
    assert all(w.dtype == np.float32 for w in loaded.get_weights())
    assert (tmp_path / "m.npz").stat().st_size < 50_000_000
    x = np.random.default_rng(2).uniform(size=(3, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=2e-2)


def test_bfloat16_only_on_a_cpu_that_has_it():
    assert resnets_utils.precision_policy(gpus=0, bf16_cpu=True) == "mixed_bfloat16"
    assert resnets_utils.precision_policy(gpus=0, bf16_cpu=False) == "float32"
    assert resnets_utils.precision_policy(gpus=2, bf16_cpu=True) == "float32"


def test_bfloat16_only_where_onednn_runs_it():
    assert resnets_utils.precision_policy(gpus=0, bf16_cpu=True, onednn=False) == "float32"


def test_fast_precision_is_float32_when_onednn_is_turned_off(monkeypatch):
    import tensorflow as tf

    monkeypatch.setattr(resnets_utils, "cpu_has_bf16", lambda: True)
    gpus = len(tf.config.list_physical_devices("GPU"))
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    assert resnets_utils.fast_precision() == ("float32" if gpus else "mixed_bfloat16")
    for off in ("0", "false", "False"):
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", off)
        assert resnets_utils.fast_precision() == "float32"
    monkeypatch.setattr(resnets_utils, "cpu_has_bf16", lambda: False)
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    assert resnets_utils.fast_precision() == "float32"


def test_validation_split_holds_out_the_same_number_of_each_label_and_nothing_else():
    labels = (np.arange(60) % 6).reshape(1, 60)  # the SIGNS files' row of labels
    train, val = resnets_utils.validation_split(labels, per_class=3, seed=4)
    assert np.bincount(labels[0, val]).tolist() == [3] * 6
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(60)), "every image in exactly one part"
    again, other = resnets_utils.validation_split(labels, per_class=3, seed=4)[1], resnets_utils.validation_split(labels, per_class=3, seed=5)[1]
    assert again.tolist() == val.tolist() and other.tolist() != val.tolist(), "the seed, and only the seed, picks the images"


def test_validation_split_names_a_label_with_too_few_images():
    import pytest

    with pytest.raises(ValueError, match="label 5 has 1 images, fewer than the 2"):
        resnets_utils.validation_split(np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5]), per_class=2)


def small_batchnorm_model():
    """Two BatchNorm layers, one of them inside a nested model, and a Dense layer."""
    import tensorflow as tf

    inner = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(2)])
    return tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.BatchNormalization(), inner])


def small_learning_model():
    """A BatchNorm between Dense layers: every weight's gradient is a real one, none is rounding noise around zero
    (as the first BatchNorm's shift in `small_batchnorm_model`, which the second one takes away), which Adam's
    division by the gradient's own size would blow up to whole steps."""
    import tensorflow as tf

    return tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(4, activation="tanh"),
                                tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(2)])


def test_set_batchnorm_momentum_reaches_every_batchnorm_also_in_nested_models():
    import tensorflow as tf

    model = small_batchnorm_model()
    assert resnets_utils.set_batchnorm_momentum(model, 0.7) == 2
    norms = [model.layers[0], model.layers[1].layers[0]]
    assert all(isinstance(norm, tf.keras.layers.BatchNormalization) and norm.momentum == 0.7 for norm in norms)


def test_batchnorm_momentum_set_after_building_is_what_fit_uses():
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.BatchNormalization()])
    resnets_utils.set_batchnorm_momentum(model, 0.25)
    model.compile(optimizer="sgd", loss="mse")
    x = np.full((8, 3), 4.0, dtype=np.float32)
    model.fit(x, x, batch_size=8, epochs=1, verbose=0)
    np.testing.assert_allclose(model.layers[0].moving_mean.numpy(), 0.25 * 0.0 + 0.75 * 4.0, rtol=1e-5)


def test_zero_init_residual_makes_every_block_of_resnet50_start_as_its_shortcut():
    model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
    assert resnets_utils.zero_init_residual(model) == 16, "ResNet50 has 16 residual blocks"
    gammas = {layer.name: layer.gamma.numpy() for layer in model.layers if layer.name.startswith("bn")}
    assert all(np.all(gamma == 0) for name, gamma in gammas.items() if name.endswith("_branch2c"))
    assert all(np.all(gamma == 1) for name, gamma in gammas.items() if not name.endswith("_branch2c")), "only the '2c' BatchNorms"


def test_a_zero_initialized_identity_block_passes_its_input_through():
    from tensorflow.keras import Input, Model

    from tools.course.notebook_source import BLOCKS_NOTEBOOK

    identity_block = resnets_utils.functions_from(BLOCKS_NOTEBOOK, "identity_block")
    inputs = Input((4, 4, 6))
    block = Model(inputs, identity_block(inputs, f=2, filters=[2, 4, 6], stage=1, block="a", training=None))
    assert resnets_utils.zero_init_residual(block) == 1
    x = np.random.default_rng(3).normal(size=(2, 4, 4, 6)).astype(np.float32)
    np.testing.assert_allclose(block.predict(x, verbose=0), np.maximum(x, 0), atol=1e-6)


def convolution_gradients(conv, x, max_map_pixels: int | None):
    """The output, and the gradients of a loss by the input and the kernel, of `conv` alone in a model."""
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.Input(x.shape[1:]), conv])
    if max_map_pixels is not None:
        assert resnets_utils.kernel_gradients_as_matmuls(model, max_map_pixels) == 1
    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        out = model(inputs)
        weights = np.cos(np.arange(np.prod(out.shape))).reshape(out.shape).astype(np.float32)  # every output counts differently
        loss = tf.reduce_sum(out * weights)
    grad_x, grad_kernel = tape.gradient(loss, [inputs, conv.kernel])
    return out.numpy(), grad_x.numpy(), grad_kernel.numpy()


@pytest.mark.parametrize("kernel, stride, padding, size", [
    (1, 1, "same", 2), (1, 2, "valid", 5), (1, 2, "same", 5), (3, 1, "same", 2), (3, 2, "same", 5), (3, 1, "valid", 4),
])
def test_kernel_gradients_as_matmuls_equal_tensorflows_own(kernel, stride, padding, size):
    import tensorflow as tf

    x = np.random.default_rng(size).normal(size=(3, size, size, 4)).astype(np.float32)
    results = []
    for max_map_pixels in (None, 10**6):
        tf.keras.utils.set_random_seed(1)
        results.append(convolution_gradients(tf.keras.layers.Conv2D(5, kernel, stride, padding), x, max_map_pixels))
    for name, own, as_matmul in zip(("output", "input gradient", "kernel gradient"), *results):
        np.testing.assert_allclose(as_matmul, own, rtol=1e-5, atol=1e-5, err_msg=name)


def test_kernel_gradients_as_matmuls_change_only_stages_4_and_5_of_resnet50_and_not_its_saved_form():
    model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
    saved = model.to_json()
    assert resnets_utils.kernel_gradients_as_matmuls(model) == 19 + 10, "stage 4: 6 blocks of 3 and a shortcut; stage 5: 3 and 1"
    assert {layer.name[3] for layer in model.layers if "convolution_op" in vars(layer)} == {"4", "5"}
    assert model.to_json() == saved


def test_kernel_gradients_as_matmuls_leave_dilated_convolutions_to_tensorflow():
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.Input((6, 6, 2)), tf.keras.layers.Conv2D(2, 3, dilation_rate=2)])
    assert resnets_utils.kernel_gradients_as_matmuls(model, 10**6) == 0


def test_notebook_4s_schedule_climbs_for_half_an_epoch_then_falls_to_zero_at_the_last_step():
    _, warmup_cosine = training_recipe()
    schedule = warmup_cosine(steps_per_epoch=10, epochs=5, peak_learning_rate=1e-3)
    rates = np.array([float(schedule(step)) for step in range(51)])
    assert rates[0] == 0.0 and np.isclose(rates[5], 1e-3) and np.isclose(rates[50], 0.0, atol=1e-9)
    assert np.all(np.diff(rates[:6]) > 0) and np.all(np.diff(rates[5:]) < 0)
    assert np.isclose(rates[27] + rates[28], 1e-3, rtol=1e-2), "halfway through the decay, half the peak (a cosine)"


def test_notebook_4s_compile_uses_adam_on_the_schedule_and_label_smoothing():
    import tensorflow as tf

    compile_for_short_training, _ = training_recipe()
    model = small_batchnorm_model()
    compile_for_short_training(model, steps_per_epoch=4, epochs=3, peak_learning_rate=2e-3, label_smoothing=0.2)
    assert isinstance(model.optimizer, tf.keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == 0.0, "the warm-up starts from zero"
    x, y = np.ones((4, 3), np.float32), tf.keras.utils.to_categorical(np.arange(4) % 2, 2)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)  # 2 steps: half an epoch of 4
    assert np.isclose(float(model.optimizer.learning_rate), 2e-3), "after half an epoch of warm-up, the peak"
    assert model.loss.get_config()["label_smoothing"] == 0.2


def traced_fit(model, x, y) -> int:
    """How many times `fit` traces the training step of `model` for two epochs of `x`, `y`."""
    traces = []
    train_step = model.train_step
    model.train_step = lambda data: traces.append(1) or train_step(data)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    return len(traces)


def test_speed_up_training_traces_the_step_once_and_learns_the_same_weights(monkeypatch):
    """Keras traces a step that makes the optimizer's and metrics' variables twice; ResNet50's trace takes tens of seconds."""
    import tensorflow as tf

    monkeypatch.setattr(resnets_utils, "fast_precision", lambda: "float32")  # the precision has its own test below
    compile_for_short_training, _ = training_recipe()
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    y = tf.keras.utils.to_categorical(np.arange(8) % 2, 2)
    weights, traces = [], []
    for speed_up in (False, True):
        tf.keras.utils.set_random_seed(4)
        model = small_learning_model()
        compile_for_short_training(model, steps_per_epoch=2, epochs=2, peak_learning_rate=1e-2)
        if speed_up:
            said = resnets_utils.speed_up_training(model)
            assert said.startswith("precision float32; 0 kernel gradients")
        traces.append(traced_fit(model, x, y))
        weights.append(model.get_weights())
    assert traces == [2, 1], f"traces without and with speed_up_training: {traces}"
    for plain, fast in zip(*weights):
        np.testing.assert_allclose(fast, plain, rtol=1e-2, atol=1e-3)


def adam_trained_weights(fused: bool, monkeypatch, **adam) -> list[np.ndarray]:
    """The weights of a small model after 6 steps of Adam(**adam), with Keras' update or the fused kernel (counted)."""
    import tensorflow as tf

    calls = []
    fused_kernel = tf.raw_ops.ResourceApplyAdam
    monkeypatch.setattr(tf.raw_ops, "ResourceApplyAdam", lambda **args: calls.append(1) or fused_kernel(**args))
    tf.keras.utils.set_random_seed(5)
    model = small_learning_model()
    model.compile(tf.keras.optimizers.Adam(**adam), "categorical_crossentropy")
    if fused:
        assert resnets_utils.fuse_adam_updates(model.optimizer)
    x = np.random.default_rng(1).normal(size=(12, 3)).astype(np.float32)
    model.fit(x, tf.keras.utils.to_categorical(np.arange(12) % 2, 2), batch_size=2, epochs=1, shuffle=False, verbose=0)
    assert bool(calls) == fused, f"the fused kernel was put in the training step {len(calls)} times"
    return model.get_weights()


@pytest.mark.parametrize("adam", [{"learning_rate": 0.05}, {"learning_rate": 0.05, "beta_1": 0.5, "epsilon": 0.1}])
def test_fused_adam_learns_the_weights_keras_adam_learns(monkeypatch, adam):
    """The same formula, bias corrections and epsilon included: a large epsilon and beta_1 would show a difference."""
    for keras_weights, fused_weights in zip(adam_trained_weights(False, monkeypatch, **adam), adam_trained_weights(True, monkeypatch, **adam)):
        np.testing.assert_allclose(fused_weights, keras_weights, rtol=1e-4, atol=1e-5)


def test_fused_adam_leaves_other_optimizers_and_amsgrad_to_keras():
    import tensorflow as tf

    assert not resnets_utils.fuse_adam_updates(tf.keras.optimizers.SGD())
    assert not resnets_utils.fuse_adam_updates(tf.keras.optimizers.Adam(amsgrad=True))


def test_speed_up_training_sets_the_fast_precision_on_every_layer_and_the_matmuls_on_resnet50(monkeypatch):
    import tensorflow as tf

    compile_for_short_training, _ = training_recipe()
    monkeypatch.setattr(resnets_utils, "fast_precision", lambda: "mixed_bfloat16")  # as on a CPU with bfloat16
    model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
    compile_for_short_training(model, steps_per_epoch=1, epochs=1, peak_learning_rate=1e-3)
    said = resnets_utils.speed_up_training(model)
    assert said.startswith("precision mixed_bfloat16; 29 kernel gradients") and "Adam's update fused" in said
    layers = [layer for layer in model.layers if not isinstance(layer, tf.keras.layers.InputLayer)]
    assert {layer.dtype_policy.name for layer in layers} == {"mixed_bfloat16"}
    assert all(weight.dtype == "float32" for weight in model.weights), "mixed precision keeps float32 weights"


def test_speed_up_training_asks_for_a_compiled_model():
    with pytest.raises(ValueError, match="compile the model first"):
        resnets_utils.speed_up_training(small_batchnorm_model())


def test_make_pretrained_trains_exports_and_reports_end_to_end(tiny_signs, tmp_path):
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "tools.model.train_pretrained", "--epochs", "1", "--sld", "", "--wild", "", "--seed", "7", "--work", str(tmp_path)],
        cwd=resnets_utils.KIT_DIR, env={**os.environ, "RESNETS_DATASETS": str(tiny_signs)}, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "kit SIGNS test set: 6 photos" in result.stdout
    assert "seed 7." in result.stdout
    model = resnets_utils.load_pretrained(tmp_path / "resnet50_signs")
    assert model.predict(np.zeros((1, 64, 64, 3), np.float32), verbose=0).shape == (1, 6)

    (tmp_path / "resume").mkdir()  # as if that run had been interrupted
    another_seed = subprocess.run(
        [sys.executable, "-m", "tools.model.train_pretrained", "--epochs", "1", "--sld", "", "--wild", "", "--seed", "8", "--work", str(tmp_path)],
        cwd=resnets_utils.KIT_DIR, env={**os.environ, "RESNETS_DATASETS": str(tiny_signs)}, capture_output=True, text=True,
    )
    assert another_seed.returncode == 1 and "Traceback" not in another_seed.stderr
    assert "holds an interrupted run with other settings (seed 7, now 8)" in another_seed.stderr


def test_make_pretrained_can_go_on_from_a_trained_models_weights_keeping_what_the_finder_reads(tiny_signs, tmp_path):
    """Stages 1 to 4 (BatchNorm statistics too) stay the trained model's, so the shipped hand finder stays valid;
    stage 5 and the classifier learn (batches of 4: several steps, as the warm-up's first has a learning rate of 0)."""
    import os
    import subprocess
    import sys

    train_pretrained.export(reference_resnet50()(input_shape=(64, 64, 3), classes=6), tmp_path / "trained")
    result = subprocess.run(
        [sys.executable, "-m", "tools.model.train_pretrained", "--epochs", "1", "--batch-size", "4", "--sld", "", "--wild", "", "--learning-rate", "1e-2",
         "--start-from", str(tmp_path / "trained"), "--work", str(tmp_path / "work")],
        cwd=resnets_utils.KIT_DIR, env={**os.environ, "RESNETS_DATASETS": str(tiny_signs)}, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Starting from the weights of {tmp_path / 'trained'}; its first 142 layers (stages 1 to 4) stay as they are." in result.stdout
    started = resnets_utils.load_pretrained(tmp_path / "trained")
    went_on = resnets_utils.load_pretrained(tmp_path / "work" / "resnet50_signs")
    kept = {layer.name for layer in resnets_utils.finder_backbone_layers(started)}
    for before, after in zip(started.layers, went_on.layers):
        if before.name in kept:
            for old, new in zip(before.weights, after.weights):
                np.testing.assert_array_equal(np.asarray(new), np.asarray(old), err_msg=old.path)
    classifier = started.layers[-1].name
    assert not np.array_equal(np.asarray(went_on.get_layer(classifier).kernel), np.asarray(started.get_layer(classifier).kernel))


def test_make_pretrained_names_a_missing_model_to_start_from_before_it_trains(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "tools.model.train_pretrained", "--start-from", str(tmp_path / "nothing")],
                            cwd=resnets_utils.KIT_DIR, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Error: Pretrained model file not found" in result.stderr and "nothing.json" in result.stderr


def test_make_pretrained_names_a_model_to_start_from_that_is_not_the_notebooks_resnet50(tiny_signs, tmp_path):
    import os
    import subprocess
    import sys

    small = small_batchnorm_model()  # a model file load_pretrained reads, but not ResNet50
    (tmp_path / "small.json").write_text(small.to_json())
    resnets_utils.save_float16_weights(small, tmp_path / "small.npz")
    result = subprocess.run(
        [sys.executable, "-m", "tools.model.train_pretrained", "--sld", "", "--wild", "", "--start-from", str(tmp_path / "small"),
         "--work", str(tmp_path / "work")],
        cwd=resnets_utils.KIT_DIR, env={**os.environ, "RESNETS_DATASETS": str(tiny_signs)}, capture_output=True, text=True,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"Error: {tmp_path / 'small'} is not the notebooks' ResNet50 for 6 digits" in result.stderr


@pytest.mark.parametrize("argument, value", [("--seed", "-1"), ("--epochs", "0"), ("--batch-size", "many")])
def test_make_pretrained_names_a_bad_number_before_it_reads_anything(argument, value):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "tools.model.train_pretrained", argument, value],
                            cwd=resnets_utils.KIT_DIR, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"argument {argument}: expected a whole number of at least" in result.stderr and repr(value) in result.stderr


def test_an_interrupted_run_resumes_only_with_its_own_settings(tmp_path):
    import pytest

    settings = {"seed": 2015, "epochs": 28, "images": {"kit SIGNS training set": 1080}}
    train_pretrained.check_resume_settings(tmp_path, settings)
    (tmp_path / "resume").mkdir()  # what BackupAndRestore leaves behind when a run is interrupted
    train_pretrained.check_resume_settings(tmp_path, settings)  # the same settings resume
    with pytest.raises(train_pretrained.ResumeMismatch, match=r"resume holds an interrupted run .*seed 2015, now 2016"):
        train_pretrained.check_resume_settings(tmp_path, {**settings, "seed": 2016})
    (tmp_path / "resume").rmdir()  # a run that finished: nothing to resume, any settings start afresh
    train_pretrained.check_resume_settings(tmp_path, {**settings, "seed": 2016})
    assert '"seed": 2016' in (tmp_path / "resume-settings.json").read_text()


def test_an_unreadable_record_of_an_interrupted_run_is_named(tmp_path):
    import pytest

    (tmp_path / "resume").mkdir()
    (tmp_path / "resume-settings.json").write_text("{half a file")
    with pytest.raises(train_pretrained.ResumeMismatch, match="resume-settings.json cannot be read"):
        train_pretrained.check_resume_settings(tmp_path, {"seed": 2015})


def test_the_seed_draws_the_backgrounds_and_leaves_the_kits_images_as_they_are(tiny_signs, monkeypatch):
    monkeypatch.setenv("RESNETS_DATASETS", str(tiny_signs))
    first, labels, counts = train_pretrained.training_data(None, None, seed=1)
    again, labels_again, _ = train_pretrained.training_data(None, None, seed=1)
    other, _, _ = train_pretrained.training_data(None, None, seed=2)
    kit = counts["kit SIGNS training set"]
    assert np.array_equal(first, again) and np.array_equal(labels, labels_again), "one seed, one training set"
    assert np.array_equal(first[:kit], other[:kit]), "the kit's images do not depend on the seed"
    assert not np.array_equal(first[kit:], other[kit:]), "another seed draws other backgrounds with no hand"


def test_make_bench_reads_notebook_4s_run_settings_from_the_notebook():
    import pytest

    from tools.course.notebook_source import notebook_constant

    epochs, batch_size, learning_rate = (notebook_constant(name) for name in ("EPOCHS", "BATCH_SIZE", "LEARNING_RATE"))
    assert isinstance(epochs, int) and isinstance(batch_size, int) and 0 < learning_rate < 1
    with pytest.raises(LookupError, match="sets no constant NO_SUCH_NAME"):
        notebook_constant("NO_SUCH_NAME")


def test_make_bench_times_the_recipes_batch_size_and_names_a_bad_list():
    import argparse

    import pytest

    from tools.model import bench_training

    assert bench_training.batch_sizes("32,128") == [32, 128]
    for bad in ("", "32,", "big", "0,32"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive whole numbers separated by commas"):
            bench_training.batch_sizes(bad)


ONEDNN_LOG = """\
onednn_verbose,v1,info,cpu,isa:Intel AVX-512 with float16, Intel AMX
onednn_verbose,v1,primitive,info,template:operation,engine,primitive,implementation,prop_kind,memory_descriptors,attributes,auxiliary,problem_desc,exec_time
onednn_verbose,v1,primitive,exec,cpu,convolution,brgconv_bwd_w:amx,backward_weights,src:bf16,,,mb8_ic4oc4_ih2oh2kh3sh1dh0ph1_iw2ow2kw3sw1dw0pw1,500
PROFILE-START mixed_bfloat16
onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:amx,forward_training,src:bf16,,,mb2_ic3oc64_ih70oh32kh7sh2dh0ph0_iw70ow32kw7sw2dw0pw0,1.5
onednn_verbose,v1,primitive,exec,cpu,convolution,brgconv_bwd_w:amx,backward_weights,src:bf16,,,mb128_ic512oc512_ih2oh2kh3sh1dh0ph1_iw2ow2kw3sw1dw0pw1,100
onednn_verbose,v1,primitive,exec,cpu,convolution,brgconv_bwd_w:amx,backward_weights,src:bf16,,,mb128_ic512oc512_ih2oh2kh3sh1dh0ph1_iw2ow2kw3sw1dw0pw1,140
onednn_verbose,v1,primitive,exec,cpu,convolution,brgconv_bwd_w:amx,backward_weights,src:bf16,,,mb128_ic64oc64_ih15oh15kh1sh1dh0ph0,20
onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:bf16,,,64x3x3x3,8
onednn_verbose,v1,primitive,exec,cpu,pooling,jit:avx512,forward_training,src:bf16,,,mb2ic64_ih32oh15kh3,0.5
onednn_verbose,v1,primitive,exec,cpu,matmul,brg_matmul:avx10_1_512_amx,undef,src:bf16,,,4608x128:128x512,3
onednn_verbose,v1,primitive,exec,cpu,gemm_api,,undef,src_f32::blocked:ba:f0 wei_f32::blocked:ab:f0,,,512x8:8x2048,4
PROFILE-END 0.400
onednn_verbose,v1,primitive,exec,cpu,convolution,brgconv_bwd_w:amx,backward_weights,src:bf16,,,mb8_ic4oc4_ih2oh2kh3sh1dh0ph1_iw2ow2kw3sw1dw0pw1,500
"""


def test_make_bench_profile_sums_onednns_timings_by_kind_of_work_and_map_size():
    from tools.model import profile_training

    profile = profile_training.summarise(ONEDNN_LOG.splitlines())  # only what lies between the marks counts
    assert profile.isa == "Intel AVX-512 with float16, Intel AMX" and profile.weights_kernels == ["brgconv_bwd_w:amx"]
    assert profile.by_work == {"convolutions, forward": 1.5, "convolutions, backward to the weights": 260.0,
                               "reorders": 8.0, "matrix products": 7.0, "other oneDNN work": 0.5}
    two_by_two = 2 * 128 * 2 * 2 * 512 * 512 * 3 * 3
    assert profile.weights_by_map == {"2x2": (240.0, 2, 2 * two_by_two), "15x15": (20.0, 1, 2 * 128 * 15 * 15 * 64 * 64)}
    text = profile_training.report(profile, steps=1, wall_seconds=0.4)
    assert "0.40 s per training step" in text and "per step (0.28 s;" in text
    assert f"2x2 maps:   0.24 s for  2.0 convolutions, {2 * two_by_two / 240 / 1e6:6.1f} GFLOP/s" in text
    assert text.index("backward to the weights") < text.index("reorders")  # the largest share first


def test_make_bench_profile_refuses_when_onednn_timed_no_convolution():
    import pytest

    from tools.model import profile_training

    no_convolution = [line for line in ONEDNN_LOG.splitlines() if ",convolution," not in line]  # as with oneDNN off
    for lines in (no_convolution, ["PROFILE-START float32", "PROFILE-END 1.0"]):
        with pytest.raises(profile_training.ProfileError, match="TF_ENABLE_ONEDNN_OPTS=0"):
            profile_training.summarise(lines)


def test_make_pretrained_trains_a_new_finder_only_when_the_backbone_learned():
    """Going on from a model keeps stages 1 to 4 frozen, so the shipped finder stays valid: no 20 minutes for a new one."""
    import subprocess

    def planned(*variables):
        return subprocess.run(["make", "-n", "pretrained", *variables], cwd=resnets_utils.KIT_DIR, capture_output=True, text=True, check=True).stdout

    assert "tools.model.train_finder" in planned()
    went_on = planned("START_FROM=models/resnet50_signs")
    assert "tools.model.train_finder" not in went_on and '--start-from "models/resnet50_signs"' in went_on
