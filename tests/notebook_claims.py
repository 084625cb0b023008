"""What the notebooks' prose says about results that differ from machine to machine.

Training curves, accuracies and gradient norms depend on the CPU's instruction set, oneDNN's
kernels and the thread count, so nbval does not compare their digits (those cells carry the
`nbval-ignore-output` tag). Instead, after nbval has run a notebook, each claim below runs in
the same kernel: a Python expression over the notebook's variables that must be true on any
machine, with a margin. The plugin in `conftest.py` adds one pytest item per claim.
"""

from __future__ import annotations

from typing import NamedTuple


class Claim(NamedTuple):
    says: str  # what the prose promises, in its own words where possible
    holds: str  # a Python expression, evaluated in the notebook's kernel after its last cell


CLAIMS: dict[str, list[Claim]] = {
    "01_why_deep_plain_networks_fail.ipynb": [
        Claim("at initialization the plain network's gradients are over a million times smaller than "
              "the residual network's, at every conv layer",
              "all(r > 1e6 * p for p, r in zip(norms['plain'], norms['residual']))"),
        Claim("the residual network's gradients stay large all the way to the input",
              "norms['residual'][0] > 0.1 * norms['residual'][-1]"),
        Claim("with BatchNorm, the residual network fits the training set far better than the plain one "
              "(training accuracy at least 0.2 higher after 6 epochs)",
              "histories['residual']['accuracy'][-1] - histories['plain']['accuracy'][-1] >= 0.2"),
    ],
    "04_training.ipynb": [
        Claim("after two epochs the training loss has dropped",
              "history.history['loss'][-1] < history.history['loss'][0]"),
        Claim("after two epochs the test accuracy is still poor (below 0.5)",
              "model.evaluate(X_test, Y_test, verbose=0)[1] < 0.5"),
        Claim("the fully trained ResNet50 gets at least 0.98 of the test images right",
              "pretrained.evaluate(X_test, Y_test, verbose=0)[1] >= 0.98"),
    ],
    "05_your_own_image.ipynb": [
        Claim("the pretrained model gets at least 0.98 of the SIGNS test images right",
              "np.mean(predicted == Y_test_orig.ravel()) >= 0.98"),
        Claim("the sample photo of a 5 reads as a 5, and the model is sure of it (over 90%)",
              "(lambda p: p.argmax() == 5 and p.max() > 0.9)("
              "model.predict(resnets_utils.load_image('../images/sample_hand_5.jpg'), verbose=0)[0])"),
    ],
}
