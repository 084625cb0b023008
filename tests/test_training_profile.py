"""`make bench-profile` breaks a real training step of the kit's recipe down by oneDNN's kernels on this machine.

It trains ResNet50 for a few steps (about 45 s a run), so `make test-all` runs it (`make test-bench`), not `make test`.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import resnets_utils


def profile(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.model.profile_training", *arguments],
                          cwd=resnets_utils.KIT_DIR, capture_output=True, text=True)


def test_it_times_every_kind_of_convolution_and_the_matrix_products_of_stages_4_and_5s_kernel_gradients():
    run = profile("--batch-size", "2", "--steps", "1")
    if not resnets_utils.onednn_enabled():
        assert run.returncode != 0 and "TF_ENABLE_ONEDNN_OPTS=0" in run.stderr and "Traceback" not in run.stderr
        return
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("CPU: ")
    for work in ("backward to the weights", "backward to the data", "forward"):
        assert f"convolutions, {work}" in run.stdout
    assert "matrix products" in run.stdout
    assert "32x32 maps:" in run.stdout  # conv1's maps (64x64 input)
    assert "4x4 maps:" not in run.stdout and "2x2 maps:" not in run.stdout  # stages 4 and 5's: matrix products
    assert "The step's arithmetic: 2 images x 1.83 GFLOP" in run.stdout  # the course's ResNet50 on 64x64 images
    assert "matrix product in float32 reaches" in run.stdout or "in bfloat16 reaches" in run.stdout


def test_with_tensorflows_own_kernel_gradients_it_times_the_small_maps_of_stages_4_and_5_too():
    run = profile("--batch-size", "2", "--steps", "1", "--tensorflow-kernel-gradients")
    if not resnets_utils.onednn_enabled():
        pytest.skip("oneDNN is off (TF_ENABLE_ONEDNN_OPTS=0): there are no oneDNN timings; the refusal is tested above")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "2x2 maps:" in run.stdout and "4x4 maps:" in run.stdout and "32x32 maps:" in run.stdout


def test_a_training_step_counts_forward_and_both_backward_passes_but_not_the_images_gradient():
    import tensorflow as tf

    from tools.model.profile_training import training_flops_per_image

    model = tf.keras.Sequential([tf.keras.Input((4, 4, 1)), tf.keras.layers.Conv2D(2, 3, padding="same"),
                                 tf.keras.layers.Flatten(), tf.keras.layers.Dense(3)])
    convolution, classifier = 2 * (4 * 4 * 2) * (3 * 3 * 1), 2 * 32 * 3  # multiply-adds of each output, times two
    assert training_flops_per_image(model) == 3 * (convolution + classifier) - convolution


def test_it_names_a_run_larger_than_the_training_set_before_starting_one():
    run = profile("--batch-size", "128", "--steps", "100")
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "need 12800 images, between 1 and the 1080 of the kit's training set" in run.stderr
