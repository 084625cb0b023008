"""Draw the kit's figures into images/: `python -m tools.draw_figures`.

Every picture the notebooks and READMEs show is drawn here, from the kit's own data.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import resnets_utils  # noqa: E402

IMAGES_DIR = resnets_utils.KIT_DIR / "images"


def draw_signs_samples() -> None:
    """images/signs_samples.png: 8 generated training images of each digit."""
    x_train, y_train, _, _, classes = resnets_utils.load_dataset()
    fig = resnets_utils.plot_samples(x_train, y_train, classes, per_class=8)
    fig.savefig(IMAGES_DIR / "signs_samples.png", dpi=80, metadata={"Software": None})


if __name__ == "__main__":
    IMAGES_DIR.mkdir(exist_ok=True)
    draw_signs_samples()
    print(f"Drew {IMAGES_DIR / 'signs_samples.png'}")
