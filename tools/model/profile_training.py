"""Where a training step's time goes on this CPU: `python -m tools.model.profile_training` (`make bench-profile`).

Times a few training steps of the kit's recipe (the notebooks' ResNet50, its tf.data pipeline,
`resnets_utils.fast_precision`) in a child process with oneDNN's own timings on
(ONEDNN_VERBOSE=profile_exec), and prints per step: the wall time, oneDNN's time by kind of
work (convolutions forward, backward to the data, backward to the weights; reorders; the
rest), the backward-weights convolutions by feature-map size with the speed each reached, and
the step's arithmetic against what one large matrix product reaches on the same cores.
It answers "why does this CPU train slowly?" with figures: on the 2-core Intel Xeon with AMX,
with TensorFlow's own kernel gradients (--tensorflow-kernel-gradients), two thirds of a step
were backward-weights convolutions, which ran at 16-19 GFLOP/s on stage 5's 2x2 maps and 53
on stage 4's 4x4; which is why the recipe computes those as matrix products
(`resnets_utils.kernel_gradients_as_matmuls`).

oneDNN's verbose mode is the profiler here, not TensorFlow's: TensorFlow's needs TensorBoard
to read, while oneDNN prints each kernel's name and time as text, and names the kernel (AMX or
not) that TensorFlow's op-level trace does not.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from typing import NamedTuple

import resnets_utils
from tools import cpu_model
from tools.docs import benchmarks

START, END, ARITHMETIC = "PROFILE-START", "PROFILE-END", "PROFILE-ARITHMETIC"
NO_CONVOLUTION = ("oneDNN timed no convolution: TensorFlow runs its own kernels instead (is TF_ENABLE_ONEDNN_OPTS=0 set?), "
                  "so there is nothing to break down; unset it and run again. (On a CPU without AVX-512 TensorFlow leaves "
                  "oneDNN off unless TF_ENABLE_ONEDNN_OPTS=1, which the kit's environment sets: run make setup.)")
PASSES = {"forward_training": "forward", "forward_inference": "forward", "backward_data": "backward to the data",
          "backward_weights": "backward to the weights"}
# TensorFlow's MatMul reaches oneDNN as its matmul primitive, or as its BLAS-style sgemm call, which oneDNN prints as
# gemm_api (in float32 on an AMD EPYC with AVX2 only, 2026-12-03): both are matrix products, the recipe's kernel
# gradients and the classifier's.
OTHER_WORK = {"reorder": "reorders", "matmul": "matrix products", "gemm_api": "matrix products"}


class ProfileError(RuntimeError):
    """The child run failed, or oneDNN timed no convolution in it."""


class Shape(NamedTuple):
    """A convolution's problem, as oneDNN's verbose line describes it (mb128_ic512oc512_ih2oh2kh3...)."""

    batch: int
    in_channels: int
    out_channels: int
    out_height: int
    out_width: int
    kernel_height: int
    kernel_width: int
    groups: int = 1

    @property
    def flops(self) -> int:
        """Multiply-adds times two, for one pass (forward, backward data and backward weights cost the same)."""
        return (2 * self.batch * self.out_height * self.out_width * self.out_channels
                * (self.in_channels // self.groups) * self.kernel_height * self.kernel_width)


def parse_shape(problem: str) -> Shape:
    """Read a convolution's problem descriptor; a missing width part means the same as the height (oneDNN's shorthand)."""
    fields = dict((key, int(value)) for key, value in re.findall(r"([a-z]+)(\d+)", problem))
    return Shape(fields["mb"], fields["ic"], fields["oc"], fields["oh"], fields.get("ow", fields["oh"]),
                 fields["kh"], fields.get("kw", fields["kh"]), fields.get("g", 1))


class Profile(NamedTuple):
    """oneDNN's milliseconds over the timed steps: by kind of work, and backward-weights convolutions by map size."""

    by_work: dict[str, float]
    weights_by_map: dict[str, tuple[float, int, int]]  # "2x2": (ms, convolutions run, flops)
    weights_kernels: list[str]  # oneDNN's implementations of them, e.g. brgconv_bwd_w:avx10_1_512_amx
    isa: str


def _columns(names: list[str], values: list[str]):
    """Look up a timing line's value by its template name: from the start up to the memory descriptors, and from the
    end after them (attributes can hold commas of their own)."""
    middle = names.index("memory_descriptors")

    def column(name: str) -> str:
        position = names.index(name)
        return values[position] if position <= middle else values[position - len(names)]

    return column


def summarise(lines: list[str]) -> Profile:
    """Sum the timings oneDNN printed between the child's START and END marks.

    Reads the column order from oneDNN's own template line (its names line up with a timing
    line from that line's fourth field, "exec"), so that a version with other columns still
    parses. Raises ProfileError when oneDNN timed no convolution.
    """
    names, timing, isa = None, False, "unknown"
    by_work: dict[str, float] = defaultdict(float)
    weights_by_map: dict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0])
    weights_kernels: set[str] = set()
    for line in lines:
        fields = line.rstrip("\n").split(",")
        if line.startswith(START) or line.startswith(END):
            timing = line.startswith(START)
        elif fields[:4] == ["onednn_verbose", "v1", "primitive", "info"] and "template:operation" in fields:
            names = [name.removeprefix("template:") for name in fields[fields.index("template:operation"):]]
        elif fields[:4] == ["onednn_verbose", "v1", "info", "cpu"] and fields[4].startswith("isa:"):
            isa = line.split("isa:", 1)[1].strip()  # the description holds commas of its own
        elif timing and names and fields[:4] == ["onednn_verbose", "v1", "primitive", "exec"]:
            column = _columns(names, fields[3:])
            primitive, milliseconds = column("primitive"), float(column("exec_time"))
            if primitive == "convolution":
                work = PASSES.get(column("prop_kind"), column("prop_kind"))
                by_work[f"convolutions, {work}"] += milliseconds
                if work == "backward to the weights":
                    shape = parse_shape(column("problem_desc"))
                    entry = weights_by_map[f"{shape.out_height}x{shape.out_width}"]
                    entry[0] += milliseconds
                    entry[1] += 1
                    entry[2] += shape.flops
                    weights_kernels.add(column("implementation"))
            else:
                by_work[OTHER_WORK.get(primitive, "other oneDNN work")] += milliseconds
    if not any(work.startswith("convolutions") for work in by_work):
        raise ProfileError(NO_CONVOLUTION)
    return Profile(dict(by_work), {size: tuple(entry) for size, entry in weights_by_map.items()}, sorted(weights_kernels), isa)


def report(profile: Profile, steps: int, wall_seconds: float) -> str:
    """The figures, per training step."""
    def seconds_per_step(milliseconds: float) -> str:
        return f"{milliseconds / 1000 / steps:6.2f} s"

    total = sum(profile.by_work.values())
    lines = [
        f"{wall_seconds / steps:.2f} s per training step (wall clock); oneDNN's kernels, per step "
        f"({seconds_per_step(total).strip()}; TensorFlow can run two at once, so this may exceed the wall clock):"
    ]
    for work, milliseconds in sorted(profile.by_work.items(), key=lambda item: -item[1]):
        lines.append(f"  {work:<40} {seconds_per_step(milliseconds)}  {milliseconds / total:5.1%}")
    if profile.weights_by_map:
        lines.append(f"Backward-to-the-weights convolutions ({', '.join(profile.weights_kernels)}) by the size of "
                     "their output map, per step:")
        for size, (milliseconds, runs, flops) in sorted(profile.weights_by_map.items(), key=lambda item: -item[1][0]):
            lines.append(f"  {size:>7} maps: {seconds_per_step(milliseconds)} for {runs / steps:4.1f} convolutions, "
                         f"{flops / milliseconds / 1e6:6.1f} GFLOP/s")
    return "\n".join(lines)


def training_flops_per_image(model) -> int:
    """Floating-point operations to train on one image: each convolution and dense layer's multiply-adds (times two)
    forward, backward to the data and backward to the weights, which cost the same; the first layer's backward to the
    data is skipped, since the input image needs no gradient. Batch normalisation, activations and the optimiser are
    left out: they add little arithmetic, only memory traffic. The model's layers are read flat, as the course builds them."""
    import tensorflow as tf

    forward = []  # one image's pass through each layer, counted as oneDNN's problems are (Shape.flops)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.Conv2D):
            height, width, out_channels = layer.output.shape[1:]
            kernel_height, kernel_width, in_channels, _ = layer.kernel.shape
            forward.append(Shape(1, in_channels * layer.groups, out_channels, height, width, kernel_height, kernel_width, layer.groups).flops)
        elif isinstance(layer, tf.keras.layers.Dense):  # a 1x1 convolution of a 1x1 map
            forward.append(Shape(1, *layer.kernel.shape, 1, 1, 1, 1).flops)
    return 3 * sum(forward) - forward[0]


def matmul_gflops(dtype: str) -> float:
    """GFLOP/s of a 2048 x 2048 matrix product in `dtype`, the best of three rounds: about the most arithmetic these
    cores do, so how far a training step is from it says how much faster better kernels could make it."""
    import tensorflow as tf

    size, repeats = 2048, 10
    a, b = (tf.random.normal([size, size], dtype=dtype) for _ in range(2))
    product = tf.function(tf.matmul)
    product(a, b).numpy()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            result = product(a, b)
        result.numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best / 1e9


def arithmetic_report(batch_size: int, flops_per_image: int, seconds_per_step: float, peak_gflops: float, dtype: str) -> str:
    """How much arithmetic a step is, and how close to the cores' matrix-product speed it runs."""
    step_gflop = batch_size * flops_per_image / 1e9
    rate = step_gflop / seconds_per_step
    return (f"The step's arithmetic: {batch_size} images x {flops_per_image / 1e9:.2f} GFLOP (the convolutions and the classifier, "
            f"forward and both ways back) = {step_gflop:.1f} GFLOP, {rate:.0f} GFLOP/s of wall clock. A 2048 x 2048 matrix "
            f"product in {dtype} reaches {peak_gflops:.0f} GFLOP/s on these cores, so the step runs at {rate / peak_gflops:.0%} of that.")


def child(batch_size: int, steps: int, tensorflow_kernel_gradients: bool) -> None:
    """Run in the child: one warm-up epoch of `steps` steps (tracing), then `steps` timed steps between the marks."""
    import tensorflow as tf

    from tools.course.notebook_source import reference_resnet50
    from tools.model.train_pretrained import SEED, compile_for_training

    x_train, y_train, *_ = resnets_utils.load_dataset()
    images = batch_size * steps
    tf.keras.utils.set_random_seed(SEED)
    tf.keras.mixed_precision.set_global_policy(resnets_utils.fast_precision())
    pipeline = resnets_utils.training_pipeline(x_train[:images], y_train.ravel()[:images], batch_size=batch_size, seed=SEED)
    model = reference_resnet50()(input_shape=(64, 64, 3), classes=6)
    if not tensorflow_kernel_gradients:
        resnets_utils.kernel_gradients_as_matmuls(model)
    compile_for_training(model, steps_per_epoch=len(pipeline), epochs=3)
    model.fit(pipeline, epochs=1, verbose=0, shuffle=False)
    print(START, model.dtype_policy.name, flush=True)
    start = time.perf_counter()
    model.fit(pipeline, epochs=1, verbose=0, shuffle=False)
    print(END, f"{time.perf_counter() - start:.3f}", flush=True)
    compute_dtype = model.dtype_policy.compute_dtype  # after the end mark: the matrix product's own kernels are not the step's
    print(ARITHMETIC, training_flops_per_image(model), f"{matmul_gflops(compute_dtype):.1f}", compute_dtype, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6, help="steps timed, after as many for warm-up")
    parser.add_argument("--tensorflow-kernel-gradients", action="store_true",
                        help="time TensorFlow's own kernel gradients on every map size, as before the recipe's matrix products")
    parser.add_argument("--record", action="store_true",
                        help="append the figures to benchmarks/records.jsonl (make bench-profile; the default run only)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.batch_size, args.steps, args.tensorflow_kernel_gradients)
        return
    try:
        training_images = len(resnets_utils.load_dataset()[0])
    except resnets_utils.DatasetError as error:
        sys.exit(f"Error: {error}")
    if min(args.batch_size, args.steps) < 1 or args.batch_size * args.steps > training_images:
        sys.exit(f"Error: --steps {args.steps} of --batch-size {args.batch_size} need {args.batch_size * args.steps} images, "
                 f"between 1 and the {training_images} of the kit's training set.")
    if not resnets_utils.onednn_enabled():
        sys.exit(f"Error: {NO_CONVOLUTION}")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores. Timing {args.steps} training steps of the kit's recipe "
          f"at batch {args.batch_size}, after {args.steps} of warm-up (a minute or two)...", flush=True)
    run = subprocess.run(
        [sys.executable, "-m", "tools.model.profile_training", "--child", "--batch-size", str(args.batch_size), "--steps", str(args.steps),
         *(["--tensorflow-kernel-gradients"] if args.tensorflow_kernel_gradients else [])],
        env=os.environ | {"ONEDNN_VERBOSE": "profile_exec"}, capture_output=True, text=True,
    )
    try:
        if run.returncode != 0:
            raise ProfileError(f"the timed training run failed:\n{run.stderr.strip()[-2000:]}")
        lines = run.stdout.splitlines()
        end = next((line for line in lines if line.startswith(END)), None)
        arithmetic = next((line for line in lines if line.startswith(ARITHMETIC)), None)
        if end is None or arithmetic is None:
            raise ProfileError(f"the timed training run stopped before printing its {'end mark' if end is None else 'arithmetic'}")
        profile = summarise(lines)
    except ProfileError as error:
        sys.exit(f"Error: {error}")
    precision = next(line for line in lines if line.startswith(START)).split()[1]
    print(f"oneDNN ISA: {profile.isa}; precision {precision}.")
    wall = float(end.split()[1])
    flops_per_image, peak_gflops, compute_dtype = arithmetic.split()[1:]
    print(report(profile, args.steps, wall))
    print(arithmetic_report(args.batch_size, int(flops_per_image), wall / args.steps, float(peak_gflops), compute_dtype))
    if args.record:
        if (args.batch_size, args.steps, args.tensorflow_kernel_gradients) != (128, 6, False):
            print("Not recorded: the benchmark is the default run (batch 128, 6 steps, the recipe's matrix products).")
            return
        step_gflops = args.batch_size * int(flops_per_image) / 1e9 / (wall / args.steps)
        benchmarks.record("make bench-profile", {
            "seconds_per_step": round(wall / args.steps, 3), "step_gflops": round(step_gflops, 1),
            "matmul_gflops": float(peak_gflops), "share_of_matmul": round(step_gflops / float(peak_gflops), 3)})


if __name__ == "__main__":
    main()
