"""The plot helpers draw what the notebooks show, and model drawings degrade gracefully."""

from __future__ import annotations

import warnings

import matplotlib
import matplotlib.text

matplotlib.use("Agg")

import numpy as np  # noqa: E402

import resnets_utils  # noqa: E402

CLASSES = list(range(6))


def test_plot_samples_draws_one_row_per_class():
    images = np.zeros((12, 64, 64, 3), np.uint8)
    fig = resnets_utils.plot_samples(images, np.arange(12) % 6, CLASSES, per_class=2)
    assert len(fig.axes) == 12 and sum(bool(ax.images) for ax in fig.axes) == 12


def test_plot_history_draws_loss_and_accuracy_with_validation():
    fig = resnets_utils.plot_history({"loss": [2, 1], "accuracy": [0.2, 0.5], "val_loss": [2, 2], "val_accuracy": [0.1, 0.2]})
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert all(len(ax.lines) == 2 for ax in fig.axes)
    assert [text.get_text() for text in fig.axes[0].get_legend().get_texts()] == ["training", "validation"]


def test_plot_confusion_matrix_counts_each_pair():
    fig = resnets_utils.plot_confusion_matrix(np.array([0, 0, 1, 5]), np.array([0, 1, 1, 5]), CLASSES)
    counts = fig.axes[0].images[0].get_array()
    assert counts[0, 0] == 1 and counts[0, 1] == 1 and counts[1, 1] == 1 and counts[5, 5] == 1 and counts.sum() == 4


def test_plot_misclassified_shows_only_the_mistakes():
    images = np.zeros((4, 64, 64, 3), np.uint8)
    fig = resnets_utils.plot_misclassified(images, np.array([0, 1, 2, 3]), np.array([0, 2, 2, 4]))
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["true 1, said 2", "true 3, said 4"]


def test_in_chinese_the_figures_are_labelled_in_chinese_with_every_character_drawn(caplog):
    import matplotlib.pyplot as plt

    try:
        resnets_utils.use_language("zh_CN")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # matplotlib warns of each character its fonts cannot draw
            log_axis = plt.figure()  # its ticks are math text (10⁻¹), which takes no fallback font (notebook 1)
            log_axis.add_subplot().semilogy([0.1, 1, -1])
            figures = [
                log_axis,
                resnets_utils.plot_history({"loss": [2, 1], "accuracy": [0.2, 0.5], "val_loss": [2, 2], "val_accuracy": [0.1, 0.2]}),
                resnets_utils.plot_confusion_matrix(np.array([0, 1]), np.array([0, 1]), CLASSES),
                resnets_utils.plot_misclassified(np.zeros((2, 64, 64, 3), np.uint8), np.array([0, 1]), np.array([0, 2])),
                resnets_utils.plot_misclassified(np.zeros((1, 64, 64, 3), np.uint8), np.array([0]), np.array([0])),
                resnets_utils.plot_probabilities(np.full(6, 1 / 6), CLASSES, not_sure_below=0.5),
            ]
            for figure in figures:
                figure.canvas.draw()
    finally:
        resnets_utils.use_language("en")
    assert not [record.message for record in caplog.records if "glyph" in record.message]  # math text logs instead
    texts = [text.get_text() for figure in figures for text in figure.findobj(matplotlib.text.Text) if text.get_text()]
    assert "轮次" in texts and "真实数字" in texts and "概率" in texts, texts
    english = resnets_utils.plot_probabilities(np.full(6, 1 / 6), CLASSES)
    assert english.axes[0].get_xlabel() == "digit" and "WenQuanYi" not in str(matplotlib.rcParams["font.family"])


def test_plot_probabilities_highlights_the_predicted_digit():
    fig = resnets_utils.plot_probabilities(np.array([0.1, 0.05, 0.6, 0.1, 0.1, 0.05]), CLASSES)
    bars = fig.axes[0].patches
    assert len(bars) == 6 and bars[2].get_facecolor() != bars[0].get_facecolor()


def test_draw_model_prints_a_text_summary_when_graphviz_is_missing(monkeypatch, tmp_path, capsys):
    import shutil

    from tensorflow.keras import Input, Model, layers

    model = Model(inp := Input((4,)), layers.Dense(2, name="tiny_dense")(inp))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert resnets_utils.draw_model(model, tmp_path / "m.png") is None
    printed = capsys.readouterr().out
    assert "graphviz is not installed" in printed and "tiny_dense" in printed
    assert not (tmp_path / "m.png").exists()
