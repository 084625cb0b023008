"""Draw the kit's figures into images/: `python -m tools.course.draw_figures`.

Every picture the notebooks and READMEs show is drawn here, from the kit's own data.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pydot  # noqa: E402

import resnets_utils  # noqa: E402

IMAGES_DIR = resnets_utils.KIT_DIR / "images"


def draw_signs_samples() -> None:
    """images/signs_samples.png: 8 generated training images of each digit."""
    x_train, y_train, _, _, classes = resnets_utils.load_dataset()
    fig = resnets_utils.plot_samples(x_train, y_train, classes, per_class=8)
    fig.savefig(IMAGES_DIR / "signs_samples.png", dpi=80, metadata={"Software": None})


def block_diagram(first_conv: str, shortcut_layers: list[str]) -> pydot.Dot:
    """A residual block drawn left to right: main path on top, shortcut below, Add and ReLU."""
    graph = pydot.Dot(rankdir="LR", bgcolor="white", nodesep="0.35", ranksep="0.3", dpi="110")
    graph.set_node_defaults(shape="box", style="rounded,filled", fontname="Helvetica", fontsize="11", height="0.45")
    graph.set_edge_defaults(arrowsize="0.6")
    colors = {"conv": "#cfe2f3", "bn": "#fff2cc", "relu": "#d9ead3", "add": "#f4cccc"}
    main = [("x", "X", "white"), ("a2a", first_conv, colors["conv"]), ("b2a", "BatchNorm", colors["bn"]),
            ("r2a", "ReLU", colors["relu"]), ("a2b", "CONV2D f x f", colors["conv"]), ("b2b", "BatchNorm", colors["bn"]),
            ("r2b", "ReLU", colors["relu"]), ("a2c", "CONV2D 1x1", colors["conv"]), ("b2c", "BatchNorm", colors["bn"]),
            ("add", "+", colors["add"]), ("out", "ReLU", colors["relu"])]
    for name, label, color in main:
        graph.add_node(pydot.Node(name, label=label, fillcolor=color, shape="circle" if name == "add" else "box"))
    for (a, *_), (b, *_) in zip(main, main[1:]):
        graph.add_edge(pydot.Edge(a, b))
    previous = "x"
    for i, label in enumerate(shortcut_layers):
        kind = "conv" if label.startswith("CONV") else "bn"
        graph.add_node(pydot.Node(f"s{i}", label=label, fillcolor=colors[kind]))
        graph.add_edge(pydot.Edge(previous, f"s{i}"))
        previous = f"s{i}"
    graph.add_edge(pydot.Edge(previous, "add", label="shortcut" if not shortcut_layers else "", fontsize="10", fontname="Helvetica"))
    return graph


def draw_block_diagrams() -> None:
    """images/identity_block.png and images/convolutional_block.png."""
    block_diagram("CONV2D 1x1", []).write_png(str(IMAGES_DIR / "identity_block.png"))
    block_diagram("CONV2D 1x1, stride s", ["CONV2D 1x1, stride s", "BatchNorm"]).write_png(str(IMAGES_DIR / "convolutional_block.png"))


def draw_plain_vs_residual() -> None:
    """images/plain_vs_residual.png: one block of notebook 1's plain network above the same block with a shortcut.

    Both are pre-activation blocks (BatchNorm and ReLU before each conv, nothing after the addition),
    as in notebook 1's `deep_cnn`: the residual one computes x[l+1] = x[l] + F(x[l]) exactly.
    """
    graph = pydot.Dot(rankdir="LR", bgcolor="white", nodesep="0.3", ranksep="0.35", dpi="110")
    graph.set_node_defaults(shape="box", style="rounded,filled", fontname="Helvetica", fontsize="11", height="0.45")
    graph.set_edge_defaults(arrowsize="0.6", fontname="Helvetica", fontsize="10")
    for prefix, title, residual in (("r", "residual", True), ("p", "plain", False)):  # the last cluster lands on top
        cluster = pydot.Cluster(prefix, label=title, labelloc="b", fontname="Helvetica", fontsize="12", color="white")
        path = [("x", "x[l]", "white"), ("n1", "BatchNorm, ReLU", "#d9ead3"), ("c1", "conv 3x3", "#cfe2f3"),
                ("n2", "BatchNorm, ReLU", "#d9ead3"), ("c2", "conv 3x3", "#cfe2f3")]
        path += [("add", "+", "#f4cccc")] if residual else []
        path += [("y", "x[l+1]", "white")]
        for name, label, color in path:
            cluster.add_node(pydot.Node(prefix + name, label=label, fillcolor=color, shape="circle" if name == "add" else "box"))
        for (a, *_), (b, *_) in zip(path, path[1:]):
            cluster.add_edge(pydot.Edge(prefix + a, prefix + b))
        if residual:
            cluster.add_edge(pydot.Edge(prefix + "x", prefix + "add", label="shortcut", constraint="false"))
        graph.add_subgraph(cluster)
    graph.write_png(str(IMAGES_DIR / "plain_vs_residual.png"))


def draw_resnet50_stages() -> None:
    """images/resnet50_stages.png: the stages of ResNet50 with the shape after each one."""
    graph = pydot.Dot(rankdir="LR", bgcolor="white", nodesep="0.2", ranksep="0.25", dpi="110")
    graph.set_node_defaults(shape="box", style="rounded,filled", fontname="Helvetica", fontsize="11")
    graph.set_edge_defaults(arrowsize="0.6", fontname="Helvetica", fontsize="9")
    stages = [
        ("input", "Input\n64x64x3", "white", ""),
        ("s1", "Stage 1\nZeroPad, CONV 7x7 /2\nBatchNorm, ReLU\nMaxPool 3x3 /2", "#cfe2f3", "15x15x64"),
        ("s2", "Stage 2\nCONV BLOCK (s=1)\nID BLOCK x2", "#fff2cc", "15x15x256"),
        ("s3", "Stage 3\nCONV BLOCK\nID BLOCK x3", "#fff2cc", "8x8x512"),
        ("s4", "Stage 4\nCONV BLOCK\nID BLOCK x5", "#fff2cc", "4x4x1024"),
        ("s5", "Stage 5\nCONV BLOCK\nID BLOCK x2", "#fff2cc", "2x2x2048"),
        ("head", "AvgPool 2x2\nFlatten\nDense softmax", "#d9ead3", ""),
        ("out", "6 classes", "white", ""),
    ]
    for name, label, color, _ in stages:
        graph.add_node(pydot.Node(name, label=label, fillcolor=color))
    for (a, _, _, shape), (b, *_) in zip(stages, stages[1:]):
        graph.add_edge(pydot.Edge(a, b, label=shape))
    graph.write_png(str(IMAGES_DIR / "resnet50_stages.png"))


def draw_sample_photos() -> None:
    """images/sample_*.jpg: photo-sized pictures for notebook 5, each from its own seed.

    sample_hand_2 and sample_hand_5 look like the training images; the others do not, so that
    students see the model unsure: a hand on a tiled, coloured wall, a hand turned on its side, and
    a cat with no hand at all.
    """
    from PIL import Image

    from tools.data.composite_hands import composite, drawn_cat
    from tools.data.signs_generator import render_sign

    def save(pixels: np.ndarray, name: str) -> None:
        photo = Image.fromarray(pixels)
        if photo.width < 192:  # drawn at the model's 64x64: enlarged to look like the other samples
            photo = photo.resize((192, 192), Image.BICUBIC)
        photo.save(IMAGES_DIR / name, quality=92)

    rng = np.random.default_rng(2025)
    for digit in (2, 5):
        save(render_sign(digit, rng, size=192), f"sample_hand_{digit}.jpg")
    no_rooms = np.zeros((0, 64, 64, 3), np.uint8)  # every background drawn: no photo's pixels in the repository
    rng = np.random.default_rng(2030)  # a 3 as the course shows it (thumb, index, middle), on a green tiled wall
    save(composite(render_sign(3, rng, size=192), no_rooms, rng), "sample_hand_3_tiled_wall.jpg")
    save(np.rot90(render_sign(1, np.random.default_rng(2026), size=192)).copy(), "sample_hand_1_sideways.jpg")
    save(drawn_cat(np.random.default_rng(2027)), "sample_no_hand_cat.jpg")
    draw_sample_whole_photo()


def draw_sample_whole_photo() -> None:
    """images/sample_whole_photo.jpg: a photo as people take it, for notebook 5's hand finder: a drawn room
    (a wall, and a cat's face where a person's would be) with a drawn hand showing 2 in a fifth of it."""
    from PIL import Image

    from resnets_utils import Box
    from tools.data.composite_hands import cut_out_hand, drawn_background, drawn_cat, place_hand
    from tools.data.signs_generator import render_sign

    rng = np.random.default_rng(2032)
    room = np.asarray(Image.fromarray(drawn_background(rng).astype(np.uint8)).resize((640, 480), Image.BICUBIC))
    cat = np.asarray(Image.fromarray(drawn_cat(np.random.default_rng(2027))).resize((160, 160), Image.BICUBIC))
    room = room.copy()
    room[60:220, 400:560] = cat
    hand = None
    while hand is None:
        hand = cut_out_hand(render_sign(2, rng, size=192), rng, turns=0)
    placed = None
    while placed is None:
        placed = place_hand(room, [Box(400, 60, 560, 220)], *hand, rng)
    Image.fromarray(placed[0]).save(IMAGES_DIR / "sample_whole_photo.jpg", quality=92)


if __name__ == "__main__":
    IMAGES_DIR.mkdir(exist_ok=True)
    draw_signs_samples()
    draw_block_diagrams()
    draw_plain_vs_residual()
    draw_resnet50_stages()
    draw_sample_photos()
    print(f"Drew the figures in {IMAGES_DIR}")
