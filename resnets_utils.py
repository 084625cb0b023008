"""The one module the notebooks import: the SIGNS data, preprocessing, the training pipeline,
photos, plots, the checks behind the public tests, your functions from earlier notebooks,
and the pretrained model.

Everything here is light on import (no TensorFlow, no matplotlib until a plot is drawn),
so that `import resnets_utils` is instant in every notebook.
"""

from __future__ import annotations

import functools
import gettext
import io
import json
import os
import warnings
from pathlib import Path
from typing import BinaryIO, Mapping, NamedTuple, Sequence

import h5py
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

KIT_DIR = Path(__file__).resolve().parent
LOCALE_DIR = KIT_DIR / "locale"  # compiled message catalogues: locale/<language>/LC_MESSAGES/resnets_kit.mo
MESSAGES_DOMAIN = "resnets_kit"
LANGUAGES = {"en": None, "zh_CN": "zh_CN", "zh": "zh_CN"}  # what use_language accepts -> the catalogue's language
# The glyphs a language's figure texts need that matplotlib's own font lacks (tools/course/figure_font.py makes it).
FIGURE_FONTS = {"zh_CN": LOCALE_DIR / "zh_CN" / "figure-font.ttf"}
_speak = gettext.NullTranslations().gettext  # the language use_language chose


def messages_in(language: str):
    """The gettext function of `language` ("en", "zh_CN" or "zh"): what `_` does once `use_language(language)` ran.

    Raises ValueError for another language, and FileNotFoundError when the compiled catalogue
    is missing (`make translations` compiles it), rather than speaking English unasked.
    """
    if language not in LANGUAGES:
        raise ValueError(f"use_language: {language!r} is not one of the kit's languages ({', '.join(LANGUAGES)}).")
    if LANGUAGES[language] is None:
        return gettext.NullTranslations().gettext
    catalogue = LOCALE_DIR / LANGUAGES[language] / "LC_MESSAGES" / f"{MESSAGES_DOMAIN}.mo"
    if not catalogue.is_file():
        raise FileNotFoundError(f"{catalogue} not found: run `make translations` in the kit's folder to compile it.")
    return _compiled_catalogue(catalogue).gettext


@functools.cache  # the grader asks for each submission: read each catalogue once
def _compiled_catalogue(path: Path) -> gettext.GNUTranslations:
    with path.open("rb") as file:
        return gettext.GNUTranslations(file)


def use_language(language: str) -> None:
    """Speak `language` from now on: "en" (the default) or "zh_CN" (Chinese, also "zh").

    The kit's messages (the public tests' reasons, errors about files and photos, what the
    model reads in a photo) and its figures' labels come in that language. The notebook chooses
    it, not the machine's locale: the Chinese notebooks call `use_language("zh_CN")` after
    importing the kit. Errors as `messages_in`, and FileNotFoundError when the language's
    figure font (FIGURE_FONTS) is missing.
    """
    global _speak
    speak = messages_in(language)
    _draw_figures_in(LANGUAGES[language])
    _speak = speak  # only once both are found: a language that cannot be set up changes nothing


def _draw_figures_in(language: str | None) -> None:
    """Put the language's figure font before matplotlib's own (which draws every other character), or take it away."""
    from matplotlib import font_manager, pyplot as plt

    families = [family for family in plt.rcParams["font.family"] if family not in _figure_families]
    font = FIGURE_FONTS.get(language)
    if font is not None:
        if not font.is_file():
            raise FileNotFoundError(f"{font} not found: the figures of this language need it (`make translations` makes it).")
        font_manager.fontManager.addfont(str(font))
        _figure_families.add(font_manager.FontProperties(fname=font).get_name())
        families = sorted(_figure_families) + families
    plt.rcParams["font.family"] = families


_figure_families: set[str] = set()  # the family names of the figure fonts added to matplotlib


def _(message: str) -> str:
    """`message` in the language chosen by `use_language` (English when it has no translation)."""
    return _speak(message)


def _figure_text(message: str) -> str:
    """A figure's title or label in the chosen language: `_`, and its characters go into the figure font."""
    return _speak(message)


def N_(message: str) -> str:
    """Mark a message for translation where it is defined; `_` translates it where it is shown."""
    return message


DATASETS_ENV = "RESNETS_DATASETS"
IMAGE_SIZE = 64
MAX_PHOTO_PIXELS = 120_000_000  # a 108-megapixel phone photo passes, a decompression bomb does not
REGENERATE_HINT = N_("Run `make data` in the kit's folder to regenerate the kit's SIGNS files.")


class DatasetError(RuntimeError):
    """A SIGNS data file is missing, unreadable or not in the SIGNS schema."""


class PhotoError(ValueError):
    """A photo cannot be turned into a model input (missing, unreadable, empty, too large)."""


def datasets_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the folder holding the SIGNS files.

    The argument wins, then the environment variable RESNETS_DATASETS, then the kit's own
    `datasets/` folder, so notebooks find the data whatever the current directory is. A relative
    RESNETS_DATASETS is relative to the kit's folder, not to the kernel's (Jupyter starts kernels
    in `notebooks/`), so `RESNETS_DATASETS=build/real-signs make lab` means the same everywhere.
    """
    if data_dir is not None:
        return Path(data_dir)
    return KIT_DIR / Path(os.environ.get(DATASETS_ENV) or "datasets").expanduser()


def _read_split(path: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read `<split>_set_x`, `<split>_set_y` and `list_classes` from one SIGNS file, checked."""
    if not path.is_file():
        raise DatasetError(_("SIGNS file not found: {path}. {REGENERATE_HINT}").format(path=path, REGENERATE_HINT=_(REGENERATE_HINT)))
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in (f"{split}_set_x", f"{split}_set_y", "list_classes") if k not in f]
            if missing:
                raise DatasetError(
                    _("{path} is not a SIGNS {split} file: it has no {missing} (it has {found}). {REGENERATE_HINT}").format(path=path, split=split, missing=', '.join(missing), found=', '.join(sorted(f.keys())) or 'nothing', REGENERATE_HINT=_(REGENERATE_HINT))
                )
            x = np.array(f[f"{split}_set_x"][:])
            y = np.array(f[f"{split}_set_y"][:])
            classes = np.array(f["list_classes"][:])
    except DatasetError:
        raise
    except Exception as error:  # h5py raises OSError, KeyError or ValueError on damaged files
        raise DatasetError(_("{path} cannot be read as an HDF5 file ({error}). {REGENERATE_HINT}").format(path=path, error=error, REGENERATE_HINT=_(REGENERATE_HINT))) from None
    if x.ndim != 4 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3) or x.dtype != np.uint8:
        raise DatasetError(
            _("{path}: {split}_set_x must be uint8 images of shape (m, 64, 64, 3), found {dtype} {shape}. {REGENERATE_HINT}").format(path=path, split=split, dtype=x.dtype, shape=x.shape, REGENERATE_HINT=_(REGENERATE_HINT))
        )
    if y.shape != (x.shape[0],):
        raise DatasetError(_("{path}: {split}_set_y has shape {shape}, expected ({images},) labels.").format(path=path, split=split, shape=y.shape, images=x.shape[0]))
    if classes.ndim != 1 or not np.isin(y, classes).all():
        raise DatasetError(_("{path}: {split}_set_y holds labels that are not in list_classes {classes}.").format(path=path, split=split, classes=classes))
    return x, y, classes


def load_dataset(
    data_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load SIGNS as the original course did: X_train, Y_train, X_test, Y_test, classes.

    Images are uint8 (m, 64, 64, 3); labels come as row vectors (1, m); classes is (6,).
    Reads `train_signs.h5` and `test_signs.h5` from `datasets_dir(data_dir)`.
    Raises DatasetError naming the file and the problem when a file is missing or wrong.
    """
    folder = datasets_dir(data_dir)
    x_train, y_train, classes = _read_split(folder / "train_signs.h5", "train")
    x_test, y_test = _read_split(folder / "test_signs.h5", "test")[:2]
    return x_train, y_train.reshape(1, -1), x_test, y_test.reshape(1, -1), classes


def convert_to_one_hot(Y: np.ndarray, C: int) -> np.ndarray:
    """Return the one-hot matrix of labels Y, shape (C, m), as in the original course."""
    return np.eye(C)[np.asarray(Y).reshape(-1)].T


def preprocess(images: np.ndarray) -> np.ndarray:
    """Scale uint8 pixels to float32 in [0, 1].

    The one preprocessing step of the kit: training, evaluation and your own photos all go
    through it, so the model always sees inputs of the same kind.
    """
    return np.asarray(images, dtype=np.float32) / 255.0


def _augment_batch(images, seed):
    """A randomly changed copy of a batch of [0, 1] images; the same `seed` always gives the same copies."""
    import math

    import tensorflow as tf

    count = tf.shape(images)[0]
    # One row of random numbers per image: flip, angle, zoom, two shifts, brightness, contrast.
    draws = tf.random.stateless_uniform(tf.stack([count, 7]), seed)
    flip, angle, zoom = draws[:, 0] < 0.5, (draws[:, 1] - 0.5) * 0.24 * math.pi, 0.85 + 0.3 * draws[:, 2]
    shift_x, shift_y = (draws[:, 3] - 0.5) * 0.2 * IMAGE_SIZE, (draws[:, 4] - 0.5) * 0.2 * IMAGE_SIZE
    images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)  # left and right hands sign alike
    cos, sin, centre = tf.cos(angle) / zoom, tf.sin(angle) / zoom, (IMAGE_SIZE - 1) / 2
    zeros = tf.zeros_like(cos)
    # Each output pixel reads the input at: turn (up to about 20 degrees) and scale about the centre, then shift.
    transforms = tf.stack([cos, -sin, centre - cos * centre + sin * centre + shift_x,
                           sin, cos, centre - sin * centre - cos * centre + shift_y, zeros, zeros], axis=1)
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=[IMAGE_SIZE, IMAGE_SIZE],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST",
    )
    brightness, contrast = (draws[:, 5] - 0.5) * 0.16, 0.8 + 0.4 * draws[:, 6]
    mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    changed = (images - mean) * contrast[:, None, None, None] + mean + brightness[:, None, None, None]
    return tf.clip_by_value(changed, 0.0, 1.0)


def training_pipeline(
    images: np.ndarray, labels: np.ndarray, batch_size: int = 32, augment: bool = True, classes: int = 6, seed: int = 1
):
    """Return a shuffled tf.data pipeline of `preprocess`ed image batches and one-hot labels, for `fit`.

    With `augment`, every epoch sees each image changed a little, the way photos of hands
    vary: mirrored, turned by up to 20 degrees, zoomed and shifted by up to 10-15%, brighter
    or darker. The same `seed` gives the same batches on every run. The pipeline prepares
    the next batch while the model trains on this one. `labels` may be a row (the SIGNS
    files' shape) or a flat array.
    """
    import tensorflow as tf

    def prepare(batch, batch_seed):
        x, y = batch
        x = tf.cast(x, tf.float32) / 255.0  # what `preprocess` does
        if augment:
            x = _augment_batch(x, tf.stack([batch_seed, tf.constant(seed, tf.int64)]))
        return x, tf.one_hot(y, classes)

    batches = (
        tf.data.Dataset.from_tensor_slices((images, np.asarray(labels).ravel()))
        .shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
    )
    batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    # tf.data's autotuning is off, with fixed parallelism instead. With it on (TensorFlow 2.21,
    # a 2-core Intel Xeon), an epoch's first step often waited with the CPU idle: up to 19 s
    # in notebook 4's 22-s epochs, and 5.1 min over `make pretrained`'s 28 epochs (the first
    # epoch's tracing included).
    no_autotune = tf.data.Options()
    no_autotune.autotune.enabled = False
    return (
        tf.data.Dataset.zip((batches, batch_seeds))
        .map(prepare, num_parallel_calls=os.cpu_count() or 1)
        .prefetch(2)
        .with_options(no_autotune)
    )


# --- Training from scratch in a few minutes (notebook 4, `make pretrained`, `make bench`) --


def validation_split(labels: np.ndarray, per_class: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (training indices, validation indices), with `per_class` images of each label held out.

    The held-out images are picked at random with `seed`, the same on every run. Choose how
    to train by the validation images, and keep the test set for the end: a test set you
    have chosen by no longer tells how the model does on new images. `labels` may be a row
    (the SIGNS files' shape) or a flat array. Raises ValueError when a label has fewer than
    `per_class` images.
    """
    labels = np.asarray(labels).ravel()
    names, counts = np.unique(labels, return_counts=True)
    if counts.min() < per_class:
        raise ValueError(_("label {label} has {count} images, fewer than the {per_class} to hold out").format(label=names[counts.argmin()], count=counts.min(), per_class=per_class))
    rng = np.random.default_rng(seed)
    held_out = np.concatenate([rng.choice(np.flatnonzero(labels == label), per_class, replace=False) for label in names])
    return np.setdiff1d(np.arange(len(labels)), held_out), np.sort(held_out)


def cpu_has_bf16() -> bool:
    """Return True when this CPU computes bfloat16 natively (AVX512-BF16 or AMX instructions)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no way to tell, so assume not
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def onednn_enabled() -> bool:
    """Return False when TF_ENABLE_ONEDNN_OPTS turns oneDNN off ("0" or "false"), as TensorFlow reads it."""
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() not in ("0", "false")


def precision_policy(gpus: int, bf16_cpu: bool, onednn: bool = True) -> str:
    """Return the Keras dtype policy to train with: "mixed_bfloat16" or "float32".

    Mixed bfloat16 (16-bit arithmetic, 32-bit weights) only on a CPU with bfloat16
    instructions whose TensorFlow uses oneDNN, the library whose kernels run them: without
    oneDNN (TF_ENABLE_ONEDNN_OPTS=0) TensorFlow's own kernels compute bfloat16 slower than
    float32. With GPUs, float32, so that the kit's recipe stays one recipe.
    """
    return "mixed_bfloat16" if bf16_cpu and onednn and not gpus else "float32"


def fast_precision() -> str:
    """Return the dtype policy that trains fastest here (`make bench` measures it): see `precision_policy`.

    Set it with `tf.keras.mixed_precision.set_global_policy` before you build a model: each
    layer keeps the policy it was built with.
    """
    import tensorflow as tf

    return precision_policy(len(tf.config.list_physical_devices("GPU")), cpu_has_bf16(), onednn_enabled())


def _all_layers(layers) -> list:
    """The layers, and those of any model nested in them."""
    return [inner for layer in layers for inner in [layer, *_all_layers(getattr(layer, "layers", []))]]


def set_batchnorm_momentum(model, momentum: float = 0.9) -> int:
    """Set the momentum of every BatchNormalization layer in `model`; return how many layers that is.

    The running averages that `evaluate` and `predict` use average BatchNorm's batch
    statistics over about the last 1 / (1 - momentum) training steps. Keras' default, 0.99,
    spans 100 steps, three epochs of SIGNS: after a short run the averages still describe
    weights long gone, and a model that trained well predicts at chance. 0.9 spans 10 steps.
    Call it before the first `fit`, which reads the momentum when it builds its training step.
    """
    import tensorflow as tf

    norms = [layer for layer in _all_layers(model.layers) if isinstance(layer, tf.keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = float(momentum)
    return len(norms)


def zero_init_residual(model) -> int:
    """Set to zero the scale (gamma) of the last BatchNorm of every residual block's main path; return how many.

    Those BatchNorms are named 'bn<stage><block>_branch2c' by the exercises' naming rule. With
    a zero scale, each block's main path starts at F(x) = 0 and the block passes its input
    on through the shortcut: at the start the deep network behaves like a shallow one and
    learns fast, and each block learns its correction from there (Goyal et al. 2017).
    """
    import tensorflow as tf

    last = [layer for layer in model.layers
            if isinstance(layer, tf.keras.layers.BatchNormalization) and layer.name.endswith("_branch2c")]
    for layer in last:
        layer.gamma.assign(tf.zeros_like(layer.gamma))
    return len(last)


def kernel_gradients_as_matmuls(model, max_map_pixels: int = 16) -> int:
    """Compute the kernel gradient of `model`'s Conv2D layers with output maps of at most
    `max_map_pixels` pixels (the 4x4 and 2x2 maps of stages 4 and 5, for a 64x64 input) as
    one matrix product; return how many layers that is.

    The gradient of a convolution's kernel is the product of the input's patches with the
    gradient of the output. On such small maps oneDNN's kernel for it is slow on some CPUs
    (several times slower than `tf.matmul` doing the same sums), and the matrix product makes a
    training step faster there; elsewhere it gains a little or nothing, and with oneDNN off it
    costs nothing (`make bench-profile` shows where a step's time goes; docs/development.md).
    The numbers are the same up to rounding; weights, forward pass and
    saved model do not change. Layers with dilation, groups or channels-first data keep
    TensorFlow's own gradient.
    """
    import tensorflow as tf

    def matmul_gradient_convolution(layer, inputs, kernel):
        strides, padding = list(layer.strides), layer.padding.upper()

        @tf.custom_gradient
        def convolve(x, w):
            def gradient(grad_out):
                kh, kw, channels_in, channels_out = w.shape
                if (kh, kw, *strides) == (1, 1, 1, 1):  # a 1x1 kernel at stride 1: its patches are the input itself
                    patches = x
                else:
                    patches = tf.image.extract_patches(x, [1, kh, kw, 1], [1, *strides, 1], [1, 1, 1, 1], padding)
                grad_kernel = tf.matmul(tf.reshape(patches, [-1, kh * kw * channels_in]),
                                        tf.reshape(grad_out, [-1, channels_out]), transpose_a=True)
                grad_x = tf.nn.conv2d_transpose(grad_out, w, tf.shape(x), strides, padding)
                return grad_x, tf.reshape(grad_kernel, w.shape)

            return tf.nn.conv2d(x, w, strides, padding), gradient

        return convolve(inputs, tf.convert_to_tensor(kernel))  # a tensor, read from the variable outside the custom gradient

    changed = 0
    for layer in _all_layers(model.layers):
        if (isinstance(layer, tf.keras.layers.Conv2D) and layer.dilation_rate == (1, 1) and layer.groups == 1
                and layer.data_format == "channels_last"
                and layer.output.shape[1] * layer.output.shape[2] <= max_map_pixels):
            # Keras' Conv2D.call computes through convolution_op, the method meant for overriding
            layer.convolution_op = lambda inputs, kernel, layer=layer: matmul_gradient_convolution(layer, inputs, kernel)
            changed += 1
    return changed


def fuse_adam_updates(optimizer) -> bool:
    """Make a Keras Adam update each weight with TensorFlow's fused Adam kernel; return whether it did.

    Keras 3's Adam updates a weight with about ten element-wise operations, each a pass over
    the weight and its two averages. TensorFlow's `ResourceApplyAdam` computes the same formula
    (lr * sqrt(1 - beta_2^t) / (1 - beta_1^t), epsilon outside the square root) in one operation:
    the weights are equal up to rounding, and the training step has far fewer operations to
    trace and optimise in `fit`'s first epoch (a few seconds of ResNet50's). An Adam with
    amsgrad, any other optimizer, and sparse gradients keep Keras' own update.
    """
    import keras
    import tensorflow as tf

    if not isinstance(optimizer, keras.optimizers.Adam) or optimizer.amsgrad:
        return False
    keras_update = optimizer.update_step

    def fused_update(gradient, variable, learning_rate):
        if isinstance(gradient, tf.IndexedSlices):
            return keras_update(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(optimizer.iterations + 1, dtype)
        index = optimizer._get_variable_index(variable)  # how Keras' own update_step finds the averages (keras 3.15, pinned, tested)
        beta_1, beta_2 = tf.cast(optimizer.beta_1, dtype), tf.cast(optimizer.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=optimizer._momentums[index].handle, v=optimizer._velocities[index].handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype),
            beta1=beta_1, beta2=beta_2, epsilon=tf.cast(optimizer.epsilon, dtype), grad=tf.cast(gradient, dtype))

    optimizer.update_step = fused_update  # the method Keras' TensorFlow optimizer calls for each weight
    return True


def speed_up_training(model) -> str:
    """Make `fit` faster on this machine without changing what it computes (up to rounding); call it after `compile`.

    None of this is part of the recipe; docs/development.md explains each step:
    - the precision this CPU trains fastest in (`fast_precision`): mixed bfloat16 where the CPU
      computes bfloat16, float32 elsewhere;
    - the kernel gradients of the smallest maps as matrix products (`kernel_gradients_as_matmuls`);
    - Adam's update in one fused kernel per weight (`fuse_adam_updates`);
    - the optimizer's and the metrics' variables made now, not in `fit`'s first step:
      TensorFlow traces a step that makes variables a second time, and tracing ResNet50's
      training step takes tens of seconds.
    Returns what it did, in one line.
    """
    import keras

    if getattr(model, "optimizer", None) is None:
        raise ValueError(_("speed_up_training: compile the model first, then speed it up."))
    precision = fast_precision()
    _compute_in(model, precision)
    matmuls = kernel_gradients_as_matmuls(model)
    fused = "Adam's update fused; " if fuse_adam_updates(model.optimizer) else ""
    model.optimizer.build(model.trainable_variables)
    # Keras builds the compiled loss and metrics in the first traced step unless a distribution
    # strategy is set; `_symbolic_build` is what it calls under one (keras 3.15, pinned, tested)
    labels = keras.KerasTensor(model.outputs[0].shape, "float32")
    model._symbolic_build(data_batch=(keras.KerasTensor(model.inputs[0].shape, "float32"), labels))
    return f"precision {precision}; {matmuls} kernel gradients as matrix products; {fused}the training step is traced once"


def _compute_in(model, precision: str) -> None:
    """Make every layer of `model` compute in `precision` ("float32" or "mixed_bfloat16"). Keras 3 lets a
    built layer change its policy, and the weights are float32 in both policies, so nothing is lost."""
    import keras

    for layer in [model, *_all_layers(model.layers)]:
        if not isinstance(layer, keras.layers.InputLayer) and layer.dtype_policy.name != precision:
            layer.dtype_policy = keras.DTypePolicy(precision)


def _to_rgb8(image: Image.Image) -> Image.Image:
    """Return an 8-bit RGB copy: alpha on white, grayscale spread to 3 channels, 16-bit scaled."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if pixels.max() > 255 else 255.0
        image = Image.fromarray(np.clip(pixels / peak * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return image.convert("RGB")


def _open_upright_rgb(photo: Path | BinaryIO, name: str, size: int) -> tuple[Image.Image, int]:
    """Open a photo no larger than MAX_PHOTO_PIXELS as upright 8-bit RGB, decoding big JPEGs at a reduced
    scale (at least `size` pixels on each side); return it and the stored photo's longer side."""
    with Image.open(photo) as image:
        if image.width * image.height > MAX_PHOTO_PIXELS:
            raise PhotoError(
                _("{name} is {width}x{height} pixels, more than the {megapixels} megapixels a photo may have.").format(name=name, width=image.width, height=image.height, megapixels=MAX_PHOTO_PIXELS // 1000000)
            )
        longer_side = max(image.size)
        image.draft("RGB", (size, size))
        return _to_rgb8(ImageOps.exif_transpose(image)), longer_side


def _open_photo(photo: Path | BinaryIO, name: str, size: int) -> tuple[Image.Image, int]:
    """`_open_upright_rgb`, with every way a file can fail to be a photo raised as a PhotoError naming it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size check decides
            return _open_upright_rgb(photo, name, size)
    except PhotoError:
        raise
    except Image.DecompressionBombError:
        raise PhotoError(_("{name} is too large to be a photo (it could exhaust memory).").format(name=name)) from None
    except UnidentifiedImageError:
        raise PhotoError(_("{name} is not an image file Pillow can read (JPEG, PNG, WebP, ...).").format(name=name)) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise PhotoError(_("{name} is damaged or truncated and cannot be decoded ({error}).").format(name=name, error=error)) from None


def _decode_photo(photo: Path | BinaryIO, name: str, size: int) -> np.ndarray:
    """Decode an opened or named photo as `read_photo` describes; errors call it `name`."""
    image = _open_photo(photo, name, size * 4)[0]
    return np.asarray(ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def read_photo(path: str | os.PathLike, size: int = IMAGE_SIZE) -> np.ndarray:
    """Read any photo (JPEG/PNG/WebP/..., any size or mode) as a uint8 (size, size, 3) array.

    The photo is turned upright from its EXIF orientation, centre-cropped to a square (so
    a hand is not squashed) and resized with anti-aliasing.
    Raises PhotoError naming the file when it is missing, empty, unreadable or too large.
    """
    path = Path(path)
    if not path.is_file():
        raise PhotoError(_("Photo not found: {path}").format(path=path))
    if path.stat().st_size == 0:
        raise PhotoError(_("{path} is an empty file, not a photo.").format(path=path))
    return _decode_photo(path, str(path), size)


def read_uploaded_photo(content: bytes | memoryview, name: str, size: int = IMAGE_SIZE) -> np.ndarray:
    """Read a photo held in memory, as an upload widget gives it, exactly as `read_photo` reads a file.

    `content` is the file's bytes (ipywidgets' `FileUpload` gives a memoryview); `name` is the uploaded file's name, which error messages quote: a student who uploads the
    wrong file learns which one. Raises PhotoError when the bytes are empty, not an image,
    damaged or too large.
    """
    if not content:
        raise PhotoError(_("{name} is an empty file, not a photo.").format(name=name))
    return _decode_photo(io.BytesIO(content), name, size)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Return a photo as a model-ready batch: float32 (1, 64, 64, 3), preprocessed.

    Raises PhotoError naming the file when it cannot be read (see `read_photo`).
    """
    return preprocess(read_photo(path))[np.newaxis]


def plot_samples(
    images: np.ndarray, labels: np.ndarray, classes: Sequence[int], per_class: int = 8, title: str = ""
):
    """Draw a grid with one row per class and `per_class` images in each; return the figure."""
    import matplotlib.pyplot as plt

    labels = np.asarray(labels).reshape(-1)
    fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class * 1.1, len(classes) * 1.15))
    for row, label in enumerate(classes):
        picks = np.flatnonzero(labels == label)[:per_class]
        for col in range(per_class):
            ax = axes[row, col]
            ax.axis("off")
            if col < len(picks):
                ax.imshow(images[picks[col]])
        axes[row, 0].set_title(f"{label}", loc="left", fontsize=10, x=-0.25, y=0.35)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history: dict[str, list[float]]):
    """Draw loss and accuracy per epoch (training and validation if present); return the figure."""
    import matplotlib.pyplot as plt

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, metric, title in ((loss_ax, "loss", _figure_text("loss")), (acc_ax, "accuracy", _figure_text("accuracy"))):
        for key, style, label in ((metric, "-o", _figure_text("training")), (f"val_{metric}", "--o", _figure_text("validation"))):
            if key in history:
                values = history[key]
                ax.plot(range(1, len(values) + 1), values, style, label=label)
        ax.set_xlabel(_figure_text("epoch"))
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[int]):
    """Draw the confusion matrix of integer labels, counts in each cell; return the figure."""
    import matplotlib.pyplot as plt

    n = len(classes)
    counts = np.zeros((n, n), dtype=int)
    np.add.at(counts, (np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)), 1)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(counts, cmap="Blues")
    for i in range(n):
        for j in range(n):
            color = "white" if counts[i, j] > counts.max() / 2 else "black"
            ax.text(j, i, counts[i, j], ha="center", va="center", color=color)
    ax.set_xticks(range(n), classes)
    ax.set_yticks(range(n), classes)
    ax.set_xlabel(_figure_text("predicted digit"))
    ax.set_ylabel(_figure_text("true digit"))
    fig.tight_layout()
    return fig


def plot_misclassified(images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, max_images: int = 12):
    """Draw the images whose prediction is wrong, titled with the true and predicted digit; return the figure."""
    import matplotlib.pyplot as plt

    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    wrong = np.flatnonzero(y_true != y_pred)[:max_images]
    columns = 6
    rows = max(1, -(-len(wrong) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.6, rows * 1.8), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong):
        ax.imshow(images[i])
        ax.set_title(_figure_text("true {truth}, said {said}").format(truth=y_true[i], said=y_pred[i]), fontsize=9)
    if not len(wrong):
        axes[0, 0].text(0, 0.5, _figure_text("No mistakes on these images."), fontsize=11)
    fig.tight_layout()
    return fig


def plot_probabilities(probabilities: np.ndarray, classes: Sequence[int], not_sure_below: float | None = None):
    """Draw the predicted probability of each digit as bars, the winner highlighted; return the figure.

    With `not_sure_below`, a dashed line marks the confidence under which the answer is "not sure"
    (the winner is then grey).
    """
    import matplotlib.pyplot as plt

    probabilities = np.asarray(probabilities).reshape(-1)
    sure = not_sure_below is None or probabilities.max() >= not_sure_below
    winner = "tab:orange" if sure else "tab:gray"
    colors = [winner if i == probabilities.argmax() else "tab:blue" for i in range(len(classes))]
    fig, ax = plt.subplots(figsize=(5, 2.8))
    ax.bar([str(c) for c in classes], probabilities, color=colors)
    if not_sure_below is not None:
        ax.axhline(not_sure_below, color="black", linestyle="--", linewidth=1)
        ax.text(len(classes) - 0.4, not_sure_below, _figure_text("not sure\nbelow"), va="center", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_xlabel(_figure_text("digit"))
    ax.set_ylabel(_figure_text("probability"))
    fig.tight_layout()
    if not_sure_below is not None:
        fig.subplots_adjust(right=0.85)  # room for the line's label, right of the axes (tight_layout leaves none)
    return fig


# --- Checks that the notebooks' public test cells run on a student's model ---------------


def feeding_layers(layer) -> list[str]:
    """Return the names of the layers whose outputs `layer` takes as inputs, in order."""
    inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
    return [tensor._keras_history.operation.name for tensor in inputs]


def _is_relu(layer) -> bool:
    """True for a ReLU layer or an Activation('relu')."""
    kind = type(layer).__name__
    return kind == "ReLU" or (kind == "Activation" and layer.get_config().get("activation") == "relu")


def _build_explaining_shape_errors(build, hint: str):
    """Call `build()`; turn Keras' shape errors into an AssertionError that says what to check."""
    try:
        built = build()
    except ValueError as error:
        if "incompatible shapes" in str(error) or "same shape" in str(error):
            raise AssertionError(_("{hint} (Keras says: {error})").format(hint=hint, error=error)) from None
        raise AssertionError(_("building the model failed: {error}").format(error=error)) from None
    assert built is not None, _("your function returns None: did you forget the `return`?")
    return built


def build_block(block_fn, input_shape: tuple[int, int, int], **kwargs):
    """Wrap one call of a student's block in a Keras Model; raise AssertionError naming the mistake.

    A block whose main path and shortcut disagree in shape fails inside Keras; this turns
    that failure into the likely causes instead of a traceback from deep inside the library.
    """
    from tensorflow.keras import Input, Model

    inputs = Input(input_shape)
    hint = _("the main path and the shortcut reach the Add with different shapes: conv '2b' must use "
             "padding='same', and only conv '2a' and the shortcut conv '1' use the stride s")
    return Model(inputs, _build_explaining_shape_errors(lambda: block_fn(inputs, **kwargs), hint))


# The models build_resnet50 made last, from one function: {"function": resnet_fn, "models": {arguments: model}}.
_LAST_RESNET50_BUILDS: dict = {"function": None, "models": {}}


def build_resnet50(resnet_fn, *, reuse: bool = False, **kwargs):
    """Call a student's ResNet50(**kwargs); raise AssertionError naming the mistake if Keras cannot build it.

    A build costs about a second of CPU, and grading runs the hidden test right after the public
    one on the same function: with `reuse=True` the hidden test takes the model the last build
    made from this very function and these arguments, and it is forgotten here (the grader caps
    a kernel's memory, and the demos after the tests build more networks). A redefined ResNet50
    is a new function, so it is always built afresh; the public tests never reuse.
    """
    arguments = tuple(sorted(kwargs.items()))
    last = _LAST_RESNET50_BUILDS
    if reuse and last["function"] is resnet_fn and arguments in last["models"]:
        return last["models"].pop(arguments)
    stages = ", ".join(_("stage {stage} must use filters={filters}").format(stage=stage, filters=spec[0]) for stage, spec in RESNET50_STAGES.items())
    hint = _("a block's shortcut and main path disagree in shape. Check each stage's filters and strides: {stages}").format(stages=stages)
    model = _build_explaining_shape_errors(lambda: resnet_fn(**kwargs), hint)
    if last["function"] is not resnet_fn:
        last.update(function=resnet_fn, models={})
    last["models"][arguments] = model
    return model


def check_residual_block(model, stage: int, block: str, f: int, filters: Sequence[int], s: int | None = None) -> None:
    """Raise AssertionError naming the first way `model` departs from the residual block spec.

    `model` wraps one block built on a single Input; `s` is None for an identity block and
    the stride for a convolutional block (whose shortcut is a 1x1 conv and a BatchNorm).
    """
    layers = {layer.name: layer for layer in model.layers}
    adds = [layer for layer in model.layers if type(layer).__name__ == "Add"]
    assert adds, _("the shortcut is never added to the main path (use Add()([X, X_shortcut]))")
    assert len(adds) == 1, _("a block adds its shortcut exactly once")
    conv_base, bn_base = f"res{stage}{block}_branch", f"bn{stage}{block}_branch"
    parts = ["2a", "2b", "2c"] + (["1"] if s is not None else [])
    for part in parts:
        assert conv_base + part in layers, _("there is no conv layer named '{conv_base_part}' (name it conv_name_base + '{part}')").format(conv_base_part=conv_base + part, part=part)
        assert bn_base + part in layers, _("there is no BatchNorm named '{bn_base_part}' after conv '{part}' (name it bn_name_base + '{part}')").format(bn_base_part=bn_base + part, part=part)
    F1, F2, F3 = filters
    stride = s or 1
    expected = {  # part: (filters and their name, kernel, strides, padding)
        "2a": (F1, "F1", 1, stride, "valid"),
        "2b": (F2, "F2", f, 1, "same"),
        "2c": (F3, "F3", 1, 1, "valid"),
        "1": (F3, "F3", 1, stride, "valid"),
    }
    for part in parts:
        conv, bn = layers[conv_base + part], layers[bn_base + part]
        n, n_name, kernel, strides, padding = expected[part]
        assert type(conv).__name__ == "Conv2D", _("'{conv_base_part}' must be a Conv2D layer").format(conv_base_part=conv_base + part)
        assert conv.filters == n, _("conv '{part}' must have {n} filters ({n_name}), not {filters}").format(part=part, n=n, n_name=n_name, filters=conv.filters)
        assert tuple(conv.kernel_size) == (kernel, kernel), _("conv '{part}' must have a {kernel}x{kernel} kernel, not {kernel_size}").format(part=part, kernel=kernel, kernel_size=conv.kernel_size)
        assert tuple(conv.strides) == (strides, strides), _("conv '{part}' must use strides=({strides}, {strides}), not {strides2}").format(part=part, strides=strides, strides2=conv.strides)
        assert conv.padding == padding, _("conv '{part}' must use padding='{padding}', not '{padding2}'").format(part=part, padding=padding, padding2=conv.padding)
        initializer = conv.get_config()["kernel_initializer"]
        assert initializer["class_name"] == "GlorotUniform" and initializer["config"]["seed"] == 0, (
            _("conv '{part}' must use kernel_initializer=glorot_uniform(seed=0)").format(part=part)
        )
        assert type(bn).__name__ == "BatchNormalization", _("'{bn_base_part}' must be a BatchNormalization layer").format(bn_base_part=bn_base + part)
        assert bn.axis in (3, -1, [3], [-1]), _("BatchNorm '{part}' must normalize the channel axis (axis=3), not axis={axis}").format(part=part, axis=bn.axis)
        assert feeding_layers(bn) == [conv.name], _("BatchNorm '{part}' must come right after conv '{part}'").format(part=part)
    users = {name: [layer for layer in model.layers if name in feeding_layers(layer)] for name in layers}
    for part, follower in (("2a", "2b"), ("2b", "2c")):
        after_bn = users.get(bn_base + part, [])
        assert len(after_bn) == 1 and _is_relu(after_bn[0]), _("BatchNorm '{part}' must be followed by a ReLU").format(part=part)
        assert feeding_layers(layers[conv_base + follower]) == [after_bn[0].name], _("conv '{follower}' must take the ReLU after BatchNorm '{part}' as input").format(follower=follower, part=part)
    added = set(feeding_layers(adds[0]))
    assert bn_base + "2c" in added, _("Add must take the output of BatchNorm '2c' directly: no ReLU before the Add")
    shortcut = bn_base + "1" if s is not None else model.layers[0].name
    if s is not None:
        assert feeding_layers(layers[conv_base + "1"]) == [model.layers[0].name], _("the shortcut conv '1' must take the block's input X_shortcut")
    assert shortcut in added, (
        _("the shortcut must go through BatchNorm '1' before the Add") if s is not None else _("the shortcut added must be the block's input X")
    )
    last = model.layers[-1]
    assert _is_relu(last) and feeding_layers(last) == [adds[0].name], _("the block must end with a ReLU applied after the Add")


def _names_the_block(norm_name: str) -> tuple[str, str] | None:
    """('3b', '2a') for a BatchNorm named 'bn3b_branch2a' by the exercises' naming rule, else None."""
    import re

    match = re.fullmatch(r"bn(\d+[a-z]+)_branch(\w+)", norm_name)
    return (match[1], match[2]) if match else None


def _training_argument(layer):
    """The `training` value `layer` was called with while the model was built, or "missing" when none was passed.

    Keras keeps the arguments of each call in the layer's inbound nodes; a layer in a built model has one.
    """
    return layer._inbound_nodes[0].arguments.kwargs.get("training", "missing")


def check_training_flag(models: Mapping[bool | None, object], network: bool = False) -> None:
    """Raise AssertionError naming the first BatchNorm, or block, that ignores the `training` argument.

    `models[training]` is a model built with that flag (by `build_block` or `build_resnet50`);
    the tests pass in models they check otherwise too, as each build of ResNet50 costs about
    a second of CPU. Every BatchNorm in a model must have been called with its flag. A
    BatchNorm called without `training=` uses its running averages when a block is called on
    a tensor, even with training=True, which is what the hidden tests do. With `network=True`
    the blocks' insides are notebook 2's business, judged by its own tests: each block must
    then call its BatchNorms as the network's first block of the same kind does (stage 2's,
    whose calls are written for you), so that only a block call without training=training is blamed.
    """
    for training, model in models.items():
        blocks: dict[str, dict[str, tuple[str, object]]] = {}  # '3b' -> part -> (BatchNorm name, training it got)
        for norm in (layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"):
            called_with = _training_argument(norm)
            block = _names_the_block(norm.name)
            if network and block:
                blocks.setdefault(block[0], {})[block[1]] = (norm.name, called_with)
                continue
            if called_with is training:
                continue
            label = f"BatchNorm '{block[1]}'" if block else f"BatchNorm '{norm.name}'"
            how = (
                _("it is called without training=, so called on a tensor it uses its running averages even with training=True")
                if called_with == "missing"
                else _("built with training={training}, it is called with training={called_with}").format(training=training, called_with=called_with)
            )
            raise AssertionError(
                _("{label} ignores the training argument: {how}. Call it with training=training, as in BatchNormalization(...)(X, training=training)").format(label=label, how=how)
            )
        first_of_kind: dict[bool, tuple[str, dict]] = {}  # has a shortcut BatchNorm '1' -> (block, its parts)
        for name, parts in blocks.items():
            reference_name, reference = first_of_kind.setdefault("1" in parts, (name, parts))
            for part, (norm_name, called_with) in parts.items():
                expected = reference.get(part, (None, called_with))[1]
                if called_with is not expected and called_with != expected:
                    raise AssertionError(
                        _("block '{name}' ignores the training argument: built with training={training}, its BatchNorm '{norm_name}' is called with training={called_with} (in block '{reference_name}', with training={expected}). Pass training=training to every block call").format(name=name, training=training, norm_name=norm_name, called_with=called_with, reference_name=reference_name, expected=expected)
                    )


def check_preactivation_block(model, stage: int, block: str, f: int, filters: Sequence[int]) -> None:
    """Raise AssertionError naming the first way `model` departs from the pre-activation block spec.

    `model` wraps one block built on a single Input: three steps of BatchNorm, ReLU and conv
    ('2a', '2b', '2c'), then the Add of the block's input, and nothing after it.
    """
    layers = {layer.name: layer for layer in model.layers}
    adds = [layer for layer in model.layers if type(layer).__name__ == "Add"]
    assert len(adds) == 1, _("the block adds its input X_shortcut to the main path exactly once (use Add()([X, X_shortcut]))")
    conv_base, bn_base = f"res{stage}{block}_branch", f"bn{stage}{block}_branch"
    F1, F2, F3 = filters
    expected = {"2a": (F1, "F1", 1, "valid"), "2b": (F2, "F2", f, "same"), "2c": (F3, "F3", 1, "valid")}
    step_input, where = model.layers[0].name, _("on the block's input X")
    for part, (n, n_name, kernel, padding) in expected.items():
        conv, bn = layers.get(conv_base + part), layers.get(bn_base + part)
        assert bn is not None and type(bn).__name__ == "BatchNormalization", _("there is no BatchNorm named '{bn_base_part}'").format(bn_base_part=bn_base + part)
        assert conv is not None and type(conv).__name__ == "Conv2D", _("there is no conv layer named '{conv_base_part}'").format(conv_base_part=conv_base + part)
        assert feeding_layers(bn) == [step_input], _("BatchNorm '{part}' must come first in its step, {where}").format(part=part, where=where)
        assert bn.axis in (3, -1, [3], [-1]), _("BatchNorm '{part}' must normalize the channel axis (axis=3)").format(part=part)
        relu = model.get_layer(feeding_layers(conv)[0])
        assert _is_relu(relu) and feeding_layers(relu) == [bn.name], _("conv '{part}' must take ReLU(BatchNorm '{part}') as input").format(part=part)
        assert (conv.filters, tuple(conv.kernel_size), tuple(conv.strides), conv.padding) == (n, (kernel, kernel), (1, 1), padding), (
            _("conv '{part}' must have {n} filters ({n_name}) of shape ({kernel}, {kernel}), strides (1, 1), padding='{padding}'").format(part=part, n=n, n_name=n_name, kernel=kernel, padding=padding)
        )
        step_input, where = conv.name, _("on the output of conv '{part}'").format(part=part)
    assert set(feeding_layers(adds[0])) == {conv_base + "2c", model.layers[0].name}, (
        _("the Add must take the output of conv '2c' and the block's input X_shortcut")
    )
    assert model.layers[-1] is adds[0], _("nothing comes after the addition: return the output of the Add")


RESNET50_STAGES = {2: ([64, 64, 256], "abc", 1), 3: ([128, 128, 512], "abcd", 2), 4: ([256, 256, 1024], "abcdef", 2), 5: ([512, 512, 2048], "abc", 2)}
RESNET50_CONV_PARAMS = 23_587_712  # all of ResNet50 but its output layer, whatever the input size


def check_resnet50(model, classes: int) -> None:
    """Raise AssertionError naming the first way `model` departs from the ResNet50 of Exercise 3."""
    layers = {layer.name: layer for layer in model.layers}
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds[:2] == ["InputLayer", "ZeroPadding2D"], _("the model must start with the input and ZeroPadding2D((3, 3))")
    assert tuple(map(tuple, model.layers[1].padding)) == ((3, 3), (3, 3)), _("the zero-padding must be (3, 3)")
    assert "conv1" in layers and "bn_conv1" in layers, _("stage 1 needs a conv named 'conv1' and a BatchNorm named 'bn_conv1'")
    conv1 = layers["conv1"]
    assert (conv1.filters, tuple(conv1.kernel_size), tuple(conv1.strides)) == (64, (7, 7), (2, 2)), _("conv1 must have 64 filters of shape (7, 7) and stride (2, 2)")
    pools = [layer for layer in model.layers if type(layer).__name__ == "MaxPooling2D"]
    assert pools and tuple(pools[0].pool_size) == (3, 3) and tuple(pools[0].strides) == (2, 2), _("stage 1 ends with MaxPooling2D((3, 3), strides=(2, 2))")
    for stage, (filters, blocks, stride) in RESNET50_STAGES.items():
        for i, block in enumerate(blocks):
            name = f"res{stage}{block}_branch2a"
            assert name in layers, _("stage {stage} needs {len_blocks} blocks ('{first_block}' to '{last_block}'): there is no '{name}'").format(stage=stage, len_blocks=len(blocks), first_block=blocks[0], last_block=blocks[-1], name=name)
            expected_stride = stride if i == 0 else 1
            assert tuple(layers[name].strides) == (expected_stride, expected_stride), _("block '{stage}{block}' must use s={expected_stride}").format(stage=stage, block=block, expected_stride=expected_stride)
            assert layers[f"res{stage}{block}_branch2c"].filters == filters[2], _("stage {stage} must use filters={filters}").format(stage=stage, filters=filters)
            assert layers[f"res{stage}{block}_branch2a"].filters == filters[0], _("stage {stage} must use filters={filters}").format(stage=stage, filters=filters)
            assert tuple(layers[f"res{stage}{block}_branch2b"].kernel_size) == (3, 3), _("stage {stage} must use f=3").format(stage=stage)
        assert f"res{stage}{blocks[0]}_branch1" in layers, _("stage {stage} must start with a convolutional block").format(stage=stage)
        extra = f"res{stage}{chr(ord(blocks[-1]) + 1)}_branch2a"
        assert extra not in layers, _("stage {stage} has too many blocks: it ends with block '{last_block}'").format(stage=stage, last_block=blocks[-1])
        assert f"res{stage}{blocks[1]}_branch1" not in layers, _("stage {stage} has only one convolutional block, block '{first_block}'").format(stage=stage, first_block=blocks[0])
    assert "avg_pool" in layers, _("there is no AveragePooling2D layer named 'avg_pool' after stage 5")
    pool = layers["avg_pool"]
    assert type(pool).__name__ == "AveragePooling2D" and tuple(pool.pool_size) == (2, 2), _("'avg_pool' must be AveragePooling2D((2, 2))")
    assert _is_relu(model.get_layer(feeding_layers(pool)[0])), _("'avg_pool' must come right after stage 5")
    head = layers.get(f"fc{classes}")
    assert head is not None, _("the output layer must be named 'fc{classes}'").format(classes=classes)
    assert head.units == classes and head.get_config()["activation"] == "softmax", _("the output layer must be Dense({classes}, activation='softmax')").format(classes=classes)
    assert model.layers[-1] is head and type(model.layers[-2]).__name__ == "Flatten", _("Flatten, then the Dense output layer, end the model")
    assert model.count_params() == RESNET50_CONV_PARAMS + 2049 * classes, (
        _("the model has {count:,} parameters, not {expected:,}").format(count=model.count_params(), expected=RESNET50_CONV_PARAMS + 2049 * classes)
    )


def draw_model(model, path: str | os.PathLike, **options):
    """Draw `model` with keras.utils.plot_model and return it as an image to display.

    Without graphviz (the `dot` program) it prints how to install it and the model's text
    summary instead, and returns None, so a notebook still runs to the end.
    """
    import shutil

    if shutil.which("dot") is None:
        print(_("graphviz is not installed, so here is the text summary instead of a drawing"))
        print(_("(install it with `apt-get install graphviz`, `brew install graphviz` or `conda install graphviz`):"))
        model.summary()
        return None
    from IPython.display import Image as DisplayImage
    from tensorflow.keras.utils import plot_model

    plot_model(model, to_file=str(path), **options)
    return DisplayImage(filename=str(path))


# --- Your functions from an earlier notebook ----------------------------------------------


class NotebookError(RuntimeError):
    """An earlier notebook cannot be read, or does not define what a later one needs."""


def _keeps(statement) -> bool:
    """True for the statements `functions_from` runs: imports, definitions, and its own calls."""
    import ast

    if isinstance(statement, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
        return True
    value = getattr(statement, "value", None)
    return isinstance(statement, ast.Assign) and isinstance(value, ast.Call) and "functions_from" in ast.unparse(value.func)


def _code_sources(path: Path) -> list[str]:
    """The source of each code cell of the notebook at `path`, in order.

    Notebooks in nbformat 4, what Jupyter writes, are read with the json module, not nbformat:
    importing nbformat imports jsonschema, whose format checkers compile grammars for about a
    second of CPU, in every kernel that runs this. Other formats go through nbformat, which
    converts them (or says why it cannot).
    """
    import json

    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells = notebook.get("cells") if isinstance(notebook, dict) and notebook.get("nbformat") == 4 else None
    if isinstance(cells, list) and all(isinstance(cell, dict) for cell in cells):
        sources = [cell.get("source", "") for cell in cells if cell.get("cell_type") == "code"]
        return [source if isinstance(source, str) else "".join(source) for source in sources]
    import nbformat

    return [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def functions_from(notebook: str | os.PathLike, *names: str):
    """Return the function `names[0]` (a tuple when you name several) as an earlier notebook defines it.

    Only the notebook's imports and definitions run (no tests, no demos, no training), so a
    later notebook uses *your* functions, quickly, even while a test of them still fails.
    Raises NotebookError naming the notebook when it is missing or broken, or lacks a name.
    """
    import ast
    import contextlib

    from IPython.core.inputtransformer2 import TransformerManager

    path = Path(notebook)
    try:
        sources = _code_sources(path)
    except FileNotFoundError:
        raise NotebookError(_("{path} not found: keep the notebooks together in one folder.").format(path=path)) from None
    except Exception as error:  # json and nbformat raise several kinds for a damaged file
        raise NotebookError(_("{path} is not a readable notebook ({error}).").format(path=path, error=error)) from None
    namespace: dict = {"__name__": path.stem}
    transformer = TransformerManager()
    for number, source in enumerate(sources, start=1):  # in the notebook's folder, as Jupyter runs it
        try:
            tree = ast.parse(transformer.transform_cell(source))
        except SyntaxError as error:
            raise NotebookError(_("{path}, code cell {number}: {msg} on line {lineno}. Fix it there first.").format(path=path, number=number, msg=error.msg, lineno=error.lineno)) from None
        tree.body = [statement for statement in tree.body if _keeps(statement)]
        with contextlib.chdir(path.parent):
            exec(compile(tree, f"{path} (code cell {number})", "exec"), namespace)
    missing = [name for name in names if not callable(namespace.get(name))]
    if missing:
        raise NotebookError(_("{path} defines no function {missing}: write it there and save that notebook.").format(path=path, missing=', '.join(missing)))
    functions = tuple(namespace[name] for name in names)
    return functions[0] if len(functions) == 1 else functions


# --- The kit's pretrained model -----------------------------------------------------------

PRETRAINED = KIT_DIR / "models" / "resnet50_signs"


class ModelFileError(RuntimeError):
    """The pretrained model's files are missing or damaged."""


def _model_files(path: str | os.PathLike, what: str) -> tuple[Path, Path]:
    """Return `<path>.json` and `<path>.npz`; raise ModelFileError naming the one that is missing."""
    files = Path(path).with_suffix(".json"), Path(path).with_suffix(".npz")
    for file in files:
        if not file.is_file():
            raise ModelFileError(_("{what} file not found: {file}. Run `make pretrained` to train it.").format(what=what, file=file))
    return files


def save_float16_weights(model, file: str | os.PathLike) -> None:
    """Write a model's weights as float16 arrays w0, w1, ...: half the bytes, so the kit's models stay under 50 MB."""
    np.savez(file, **{f"w{i}": weight.astype(np.float16) for i, weight in enumerate(model.get_weights())})


def _float16_weights(file: Path) -> list[np.ndarray]:
    """The weights `save_float16_weights` wrote, as float32, in order."""
    with np.load(file) as stored:
        return [stored[f"w{i}"].astype(np.float32) for i in range(len(stored.files))]


def load_pretrained(path: str | os.PathLike = PRETRAINED):
    """Return the kit's pretrained ResNet50: a float32 Keras model, compiled, that takes `preprocess`ed images.

    `path` names two files: `<path>.json` (the architecture) and `<path>.npz` (the weights,
    stored as float16 to keep the file under 50 MB). Raises ModelFileError naming the file
    when either is missing or unreadable.
    """
    import tensorflow as tf

    architecture, weights = _model_files(path, "Pretrained model")
    try:
        model = tf.keras.models.model_from_json(architecture.read_text())
        model.set_weights(_float16_weights(weights))
    except Exception as error:  # Keras and numpy raise many kinds on damaged files
        raise ModelFileError(_("{path}.json/.npz cannot be loaded as the kit's model ({error}).").format(path=path, error=error)) from None
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def load_your_model(path: str | os.PathLike = "my_resnet50.keras"):
    """Return the model notebook 4 saved with `model.save`, ready to read images, in float32: a model
    trained where the CPU computes bfloat16 keeps that precision in its file, whose convolutions a CPU
    without bfloat16 (most laptops) may fail to run (oneDNN held to AVX2 does). Raises ModelFileError naming the file when it is
    missing (notebook 4 not run to its end) or cannot be read (a save cut short)."""
    import tensorflow as tf

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(_("{path} not found: run notebook 4 to its end, which saves your model there.").format(path=path))
    try:
        model = tf.keras.models.load_model(path, compile=False)  # reading needs no optimizer
    except Exception as error:  # zipfile, h5py and Keras raise many kinds on a damaged file
        raise ModelFileError(_("{path} cannot be loaded ({error}): run notebook 4 to its end again.").format(path=path, error=error)) from None
    _compute_in(model, "float32")
    return model


NOT_SURE_SUFFIX = ".not-sure.json"


class Reading(NamedTuple):
    """What the model reads in one photo: a digit, or None for "not sure" (or, from `predict_photo`, "no hand found")."""

    digit: int | None
    confidence: float  # the largest probability
    probabilities: np.ndarray
    box: Box | None = None  # `predict_photo`: the hand's box in the photo's pixels, None when no hand was found
    hands: int | None = None  # `predict_photo`: how many hands the finder found (the surest reading is kept)
    crop: np.ndarray | None = None  # `predict_photo`: the uint8 (64, 64, 3) pixels the model read

    def __str__(self) -> str:
        if self.hands == 0:
            return _("no hand found")
        best = int(self.probabilities.argmax())
        if self.digit is None:
            said = _("not sure (its best guess, a {best}, is only {confidence:.0%} likely)").format(best=best, confidence=self.confidence)
        else:
            said = _("a {digit} ({confidence:.0%} sure)").format(digit=self.digit, confidence=self.confidence)
        several = _(", the surest of {hands} hands found").format(hands=self.hands) if self.hands and self.hands > 1 else ""
        return said + several


def not_sure_below(path: str | os.PathLike = PRETRAINED) -> float:
    """Return the confidence under which the pretrained model's answer should be "not sure".

    `tools.model.evaluate` chooses it on held-out validation photos of hands in real rooms
    and writes it to `<path>.not-sure.json` beside the model. Raises ModelFileError naming
    the file when it is missing or malformed.
    """
    file = Path(path).with_suffix(NOT_SURE_SUFFIX)
    if not file.is_file():
        raise ModelFileError(_("{file} not found: run `make evaluate-pretrained` to choose the model's threshold.").format(file=file))
    try:
        threshold = float(json.loads(file.read_text())["threshold"])
    except (ValueError, KeyError, TypeError) as error:
        raise ModelFileError(_("{file} holds no threshold ({error!r}); run `make evaluate-pretrained` again.").format(file=file, error=error)) from None
    if not 0 <= threshold <= 1:
        raise ModelFileError(_("{file}: the threshold {threshold} is not a probability between 0 and 1.").format(file=file, threshold=threshold))
    return threshold


def digit_probabilities(model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Return the model's probabilities for uint8 `images` (m, 64, 64, 3), each averaged with its mirror image's.

    A hand in a mirror shows the same digit (a left hand is a mirrored right one), so the
    mirror image is a free second look: for the pretrained model it reads more of the photos
    of hands in real rooms right and makes its confidence more honest (docs/model-card.md).
    """
    batch = preprocess(images)
    mirrored = batch[:, :, ::-1]
    return (model.predict(batch, batch_size=batch_size, verbose=0) + model.predict(mirrored, batch_size=batch_size, verbose=0)) / 2


def predict_digit(model, pixels: np.ndarray, threshold: float = 0.0) -> Reading:
    """Return the model's Reading of one photo's uint8 (64, 64, 3) `pixels` (as `read_photo` gives them).

    The probabilities are `digit_probabilities`: the photo's and its mirror image's, averaged.
    The digit is None ("not sure") when the largest probability is under `threshold`: a
    model always picks a digit, even for a wall, so how sure it is matters as much as what.
    """
    probabilities = np.asarray(digit_probabilities(model, pixels[np.newaxis])[0], dtype=np.float64)
    confidence = float(probabilities.max())
    return Reading(int(probabilities.argmax()) if confidence >= threshold else None, confidence, probabilities)


# --- Find the hand, then read it ----------------------------------------------------------

FINDER = KIT_DIR / "models" / "hand_finder"
FINDER_SIZE = 256  # the finder sees the photo with its longer side at this many pixels
FINDER_STRIDE = 16  # the backbone's stage 4 gives one cell per 16x16 pixels
CROP_SCALE = 1.15  # the reader's crop: a square of 1.15 times the hand box's longer side (as the wild photos' crops)
READING_SCALES = (CROP_SCALE, 1.5)  # `predict_photo` reads each found hand at both: a loose box still leaves a sure reading
WORKING_SIDE = 1024  # a photo is read at most this large: a 12-megapixel photo decodes at a quarter of its size


class Box(NamedTuple):
    """A hand's box in a photo's pixels: left, top, right, bottom."""

    left: float
    top: float
    right: float
    bottom: float

    def scaled(self, factor: float) -> Box:
        return Box(*(value * factor for value in self))


def hand_crop_box(box: Box, width: int, height: int, scale: float = CROP_SCALE) -> Box:
    """The square crop around a hand's box that the reader was trained on: `scale` (1.15) times its longer
    side, centred on it, moved inside the photo where it would cross an edge, no larger than the shorter side."""
    side = min(scale * max(box.right - box.left, box.bottom - box.top), width, height)
    left = min(max((box.left + box.right) / 2 - side / 2, 0), width - side)
    top = min(max((box.top + box.bottom) / 2 - side / 2, 0), height - side)
    return Box(round(left), round(top), round(left + side), round(top + side))


def finder_canvas(image: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Return (uint8 FINDER_SIZE square canvas, scale, (left, top)): the photo shrunk so its longer side
    fits, centred on grey. A canvas pixel x is the photo pixel (x - left) / scale."""
    height, width = image.shape[:2]
    scale = FINDER_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    shrunk = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    canvas = Image.new("RGB", (FINDER_SIZE, FINDER_SIZE), (128, 128, 128))
    offset = ((FINDER_SIZE - size[0]) // 2, (FINDER_SIZE - size[1]) // 2)
    canvas.paste(shrunk, offset)
    return np.asarray(canvas), scale, offset


def finder_backbone_layers(reader) -> list:
    """The reader's layers up to the end of stage 4 (its last layer with 4x4 maps): those the finder reads."""
    cells = IMAGE_SIZE // FINDER_STRIDE
    stage4_end = max(i for i, layer in enumerate(reader.layers) if tuple(layer.output.shape[1:3]) == (cells, cells))
    return reader.layers[:stage4_end + 1]


def finder_backbone(reader):
    """Return the reader's layers up to the end of stage 4, taking images of any size: one 1024-channel
    cell per 16x16 pixels. The finder reuses the kit's ResNet50 as a feature extractor: a hand's features
    are what that network learned to read, and the finder adds only a small head."""
    import keras

    cut = keras.Model(reader.input, finder_backbone_layers(reader)[-1].output)
    backbone = keras.models.clone_model(cut, input_tensors=keras.Input((None, None, 3)))
    backbone.set_weights(cut.get_weights())
    backbone.trainable = False
    return backbone


class HandFinder(NamedTuple):
    """The kit's hand finder: the reader's backbone, a head that maps its cells to hand centres and
    sizes, and the score under which a peak is not a hand."""

    backbone: object
    head: object
    no_hand_below: float


class FoundHand(NamedTuple):
    """One hand the finder found: its box in the photo's pixels and how sure the finder is (0-1)."""

    box: Box
    score: float


def load_hand_finder(path: str | os.PathLike = FINDER, reader=None) -> HandFinder:
    """Return the kit's hand finder (`make pretrained` trains it). `reader` is the kit's pretrained model,
    loaded when not given. Raises ModelFileError naming the file when it is missing or damaged."""
    import keras

    description, weights = _model_files(path, "Hand finder")
    try:
        settings = json.loads(description.read_text())
        head = keras.models.model_from_json(json.dumps(settings["head"]))
        head.set_weights(_float16_weights(weights))
        threshold = float(settings["no_hand_below"])
    except Exception as error:  # Keras, json and numpy raise many kinds on damaged files
        raise ModelFileError(_("{path}.json/.npz cannot be loaded as the kit's hand finder ({error}).").format(path=path, error=error)) from None
    return HandFinder(finder_backbone(reader if reader is not None else load_pretrained()), head, threshold)


def hand_map(finder: HandFinder, canvases: np.ndarray) -> np.ndarray:
    """Return the head's (m, cells, cells, 5) output for uint8 canvases: a hand-centre score (a logit),
    the centre's offset within its cell (x, y) and the box's log width and height (in canvas sides)."""
    features = finder.backbone.predict(preprocess(canvases), batch_size=8, verbose=0)
    return finder.head.predict(features, batch_size=8, verbose=0)


def boxes_from_map(output: np.ndarray, threshold: float, most: int = 5) -> list[FoundHand]:
    """Return the hands in one head output (cells, cells, 5), in canvas pixels, best first: every cell
    whose score is at least `threshold` and at least its eight neighbours'."""
    scores = 1 / (1 + np.exp(-output[..., 0]))
    padded = np.pad(scores, 1, constant_values=-1.0)
    neighbours = np.max([padded[1 + dy : 1 + dy + scores.shape[0], 1 + dx : 1 + dx + scores.shape[1]]
                         for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
    found = []
    for row, col in zip(*np.nonzero((scores >= neighbours) & (scores >= threshold))):
        x = (col + 0.5 + output[row, col, 1]) * FINDER_STRIDE
        y = (row + 0.5 + output[row, col, 2]) * FINDER_STRIDE
        width, height = np.exp(output[row, col, 3:5]) * FINDER_SIZE
        found.append(FoundHand(Box(x - width / 2, y - height / 2, x + width / 2, y + height / 2), float(scores[row, col])))
    kept: list[FoundHand] = []
    for hand in sorted(found, key=lambda hand: -hand.score):  # one hand can peak in two cells: keep the surer
        centre_x, centre_y = (hand.box.left + hand.box.right) / 2, (hand.box.top + hand.box.bottom) / 2
        if not any(other.box.left < centre_x < other.box.right and other.box.top < centre_y < other.box.bottom for other in kept):
            kept.append(hand)
    return kept[:most]


def find_hands(finder: HandFinder, image: np.ndarray) -> list[FoundHand]:
    """Return the hands in a uint8 (h, w, 3) photo, best first, their boxes in the photo's pixels."""
    canvas, scale, (left, top) = finder_canvas(image)
    found = boxes_from_map(hand_map(finder, canvas[np.newaxis])[0], finder.no_hand_below)
    height, width = image.shape[:2]

    def in_photo(box: Box) -> Box:
        return Box(max(0.0, (box.left - left) / scale), max(0.0, (box.top - top) / scale),
                   min(float(width), (box.right - left) / scale), min(float(height), (box.bottom - top) / scale))

    return [FoundHand(in_photo(hand.box), hand.score) for hand in found]


MIN_PHOTO_SIDE = 32  # a smaller picture is an icon, not a photo of a hand


def _working_photo(photo: str | os.PathLike | bytes | memoryview, name: str | None) -> tuple[np.ndarray, float, str]:
    """Return (uint8 upright photo at most WORKING_SIDE on its longer side, stored pixels per working pixel, its name)."""
    if isinstance(photo, (bytes, bytearray, memoryview)):
        name = name or "the uploaded photo"
        if not photo:
            raise PhotoError(_("{name} is an empty file, not a photo.").format(name=name))
        source: Path | BinaryIO = io.BytesIO(photo)
    else:
        source = Path(photo)
        name = name or str(source)
        if not source.is_file():
            raise PhotoError(_("Photo not found: {source}").format(source=source))
        if source.stat().st_size == 0:
            raise PhotoError(_("{source} is an empty file, not a photo.").format(source=source))
    image, longer_side = _open_photo(source, name, WORKING_SIDE)
    if min(image.size) < MIN_PHOTO_SIDE:
        raise PhotoError(_("{name} is {width}x{height} pixels: too small to show a hand (at least {MIN_PHOTO_SIDE} on each side).").format(name=name, width=image.width, height=image.height, MIN_PHOTO_SIDE=MIN_PHOTO_SIDE))
    image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(image), longer_side / max(image.size), name


_kit_finder: HandFinder | None = None


def kit_hand_finder() -> HandFinder:
    """The kit's hand finder, loaded once (see `load_hand_finder`)."""
    global _kit_finder
    if _kit_finder is None:
        _kit_finder = load_hand_finder()
    return _kit_finder


def predict_photo(model, photo: str | os.PathLike | bytes | memoryview, threshold: float = 0.0,
                  name: str | None = None, finder: HandFinder | None = None) -> Reading:
    """Find the hand in a photo of any framing, then read it: the model's Reading of the hand's crop.

    `photo` is a path or an uploaded file's bytes (`name` is then what errors call it). The
    finder (the kit's, unless given) looks for hands. Each is cut out as the reader's training
    crops were (`hand_crop_box`) and, in case the box is loose, once more with room around it
    (`READING_SCALES`); `model` reads every crop with `predict_digit`'s rules and the surest
    reading is the answer. (On the wild validation sessions this read 7 points more half-frame
    crops and 12 more whole photos right than the larger hand's tight crop alone: the reader's
    confidence also tells a hand from a box around something else.) The Reading's `box` is in the
    photo's own pixels; with no hand found, `hands` is 0 and `digit` is None: a picture without a
    hand never gets a digit. Raises PhotoError naming the photo when it cannot be read.
    """
    image, factor, name = _working_photo(photo, name)
    return read_found_hands(model, image, find_hands(finder or kit_hand_finder(), image), threshold, factor)


def read_found_hands(model, image: np.ndarray, hands: list[FoundHand], threshold: float = 0.0, factor: float = 1.0) -> Reading:
    """`predict_photo`'s second stage: read the hands found in a uint8 (h, w, 3) photo (their boxes in its pixels;
    `factor` scales them to the Reading's `box`). Apart, it reads a hand whose box comes from elsewhere, such as
    a labelled box, to measure what the finder costs (`tools/model/compare_tracker.py`)."""
    if not hands:
        return Reading(None, 0.0, np.zeros(6), box=None, hands=0)
    candidates = [(hand.box, hand_crop_box(hand.box, image.shape[1], image.shape[0], scale))
                  for hand in hands for scale in READING_SCALES]
    crops = np.stack([np.asarray(Image.fromarray(image).crop(tuple(crop)).resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS))
                      for _box, crop in candidates])
    probabilities = np.asarray(digit_probabilities(model, crops), dtype=np.float64)
    surest = int(probabilities.max(axis=1).argmax())
    confidence = float(probabilities[surest].max())
    digit = int(probabilities[surest].argmax()) if confidence >= threshold else None
    return Reading(digit, confidence, probabilities[surest], box=candidates[surest][0].scaled(factor),
                   hands=len(hands), crop=crops[surest])
