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
        # Section 2, at initialization without BatchNorm: the same weights on every machine (fixed seeds),
        # so only rounding differs; the margins are wide all the same.
        Claim("with Glorot's initialization the 41-layer plain network's signal is over a million times weaker "
              "at the last conv layer than at the first",
              "signal['glorot_uniform', 'plain, 41'][-1] < 1e-6 * signal['glorot_uniform', 'plain, 41'][0]"),
        Claim("with Glorot's initialization the 41-layer plain network's gradients are tiny at every conv layer, "
              "the first as well as the last (below 1e-6)",
              "max(gradients['glorot_uniform', 'plain, 41']) < 1e-6"),
        Claim("with Glorot's initialization the 41-layer plain network's gradients are nearly flat across its layers "
              "(the largest under 50 times the smallest), while its signal falls by a factor of over a million",
              "max(gradients['glorot_uniform', 'plain, 41']) < 50 * min(gradients['glorot_uniform', 'plain, 41'])"),
        Claim("He's initialization keeps the plain network's signal from dying: at the last conv layer it is over "
              "10,000 times stronger than with Glorot's",
              "signal['he_normal', 'plain, 41'][-1] > 1e4 * signal['glorot_uniform', 'plain, 41'][-1]"),
        Claim("with He's initialization the 41-layer plain network's signal still fades: over a hundred times "
              "weaker at the last conv layer than at the first",
              "signal['he_normal', 'plain, 41'][-1] < signal['he_normal', 'plain, 41'][0] / 100"),
        Claim("with He's initialization the 41-layer plain network's gradients are over ten thousand times larger "
              "than with Glorot's, at every conv layer",
              "all(he > 1e4 * glorot for glorot, he in "
              "zip(gradients['glorot_uniform', 'plain, 41'], gradients['he_normal', 'plain, 41']))"),
        Claim("with shortcuts the gradients are large at every conv layer, with either initialization (above 0.1)",
              "min(gradients['glorot_uniform', 'residual, 41'] + gradients['he_normal', 'residual, 41']) > 0.1"),
        Claim("with He's initialization and no BatchNorm the residual network's signal grows block after block: "
              "over 10 times stronger at the last conv layer than at the first",
              "signal['he_normal', 'residual, 41'][-1] > 10 * signal['he_normal', 'residual, 41'][0]"),
        Claim("depth alone, with Glorot's: the 9-layer plain network's gradients are over ten thousand times larger "
              "than the 41-layer one's",
              "min(gradients['glorot_uniform', 'plain, 9']) > 1e4 * max(gradients['glorot_uniform', 'plain, 41'])"),
        Claim("depth alone, with He's: 32 more layers cost the plain network's gradients a factor of tens "
              "(less than 1,000), not of hundreds of thousands",
              "max(gradients['he_normal', 'plain, 9']) < 1e3 * min(gradients['he_normal', 'plain, 41'])"),
        # Section 4, with BatchNorm and He's initialization
        Claim("with BatchNorm the signal keeps its scale in every network (RMS between 0.1 and 10 at every conv layer)",
              "all(0.1 < rms < 10 for values in bn_signal.values() for rms in values)"),
        Claim("with BatchNorm no gradient vanishes (above 0.01 at every conv layer of every network), and in the "
              "41-layer plain network they grow towards the input (the first layer's over 10 times the last's)",
              "min(min(values) for values in bn_gradients.values()) > 0.01 "
              "and bn_gradients['plain, 41'][0] > 10 * bn_gradients['plain, 41'][-1]"),
        Claim("with BatchNorm the 41-layer plain network's smallest and largest gradients are nearly a thousand times "
              "apart (the largest between 300 and 3,000 times the smallest)",
              "300 * min(bn_gradients['plain, 41']) < max(bn_gradients['plain, 41']) < 3000 * min(bn_gradients['plain, 41'])"),
        Claim("with BatchNorm the residual network's gradients stay within a factor of about twenty of each other "
              "(the largest under 30 times the smallest), and the 9-layer plain network's within a few (under 10 times)",
              "max(bn_gradients['residual, 41']) < 30 * min(bn_gradients['residual, 41']) "
              "and max(bn_gradients['plain, 9']) < 10 * min(bn_gradients['plain, 9'])"),
        Claim("in the same 8 epochs the 9-layer plain network fits the training set far better than the 41-layer "
              "plain one (training accuracy at least 0.3 higher)",
              "histories['plain, 9']['accuracy'][-1] - histories['plain, 41']['accuracy'][-1] >= 0.3"),
        Claim("the 41-layer plain network's training loss has hardly moved from a uniform guess's 1.79 "
              "(still above 1.4 after 8 epochs)",
              "histories['plain, 41']['loss'][-1] > 1.4"),
        Claim("the 41-layer residual network fits the training set as well as the 9-layer plain one "
              "(training accuracy within 0.1 of it or above, training loss at most 0.1 above it)",
              "histories['residual, 41']['accuracy'][-1] >= histories['plain, 9']['accuracy'][-1] - 0.1 "
              "and histories['residual, 41']['loss'][-1] <= histories['plain, 9']['loss'][-1] + 0.1"),
    ],
    "04_training.ipynb": [
        # Sections 1-2: the same on every machine
        Claim("the validation images are 10 of each digit, taken out of the training images",
              "np.bincount(Y_train_orig.ravel()[val]).tolist() == [10] * 6 and not set(train) & set(val) "
              "and len(train) + len(val) == len(X_train_orig) == 1080"),
        Claim("ResNet50 has 23.6 million weights", "round(model.count_params() / 1e6, 1) == 23.6"),
        Claim("the learning rate climbs from 0 to its peak during the first half epoch, then falls to 0 "
              "at the last step",
              "float(schedule(0)) == 0 and abs(float(schedule(steps_per_epoch // 2)) - LEARNING_RATE) < 1e-9 "
              "and float(schedule(steps_per_epoch * EPOCHS)) < 1e-9"),
        Claim("with Keras' default momentum the running averages span about 100 steps, about one and a half epochs here",
              "1.4 < 1 / (1 - 0.99) / steps_per_epoch < 1.7"),
        Claim("every residual block starts as its shortcut, and every BatchNorm has the shorter memory",
              "blocks == 16 and norms == 53"),
        # Section 3, training: the digits differ from machine to machine, so wide margins
        Claim("the validation accuracy rises towards the training accuracy: in the last epoch it is at least "
              "0.75, within 0.2 of the training accuracy",
              "history.history['val_accuracy'][-1] >= 0.75 "
              "and history.history['accuracy'][-1] - history.history['val_accuracy'][-1] <= 0.2"),
        Claim("with label smoothing the training loss falls, but not to 0 (from over 1.5 in the first epoch to "
              "between 0.3 and 1 in the last)",
              "history.history['loss'][0] > 1.5 and 0.3 < history.history['loss'][-1] < 1.0"),
        # Section 4: your model on the test set
        Claim("your model reads most of the test images right, 80% or more", "test_accuracy >= 0.8"),
        Claim("the confusion matrix and the mistakes shown are your model's",
              "abs(np.mean(predicted == Y_test_orig.ravel()) - test_accuracy) < 0.01"),
        # Section 5: the experiment on BatchNorm's momentum
        Claim("with 0.99, one epoch of batches leaves about half of the fresh averages, and with 0.9 nothing of them",
              "0.4 < 0.99 ** steps_per_epoch < 0.6 and 0.9 ** steps_per_epoch < 0.01"),
        Claim("with 0.99 the validation accuracy falls to about what guessing gets (under 0.4); with 0.9 it is your "
              "model's again (within 0.05)",
              "experiment_accuracy[0.99] < 0.4 and abs(experiment_accuracy[0.9] - your_accuracy) <= 0.05"),
        Claim("the experiment left your model's own averages alone",
              "abs(model.evaluate(X_val, Y_val, verbose=0)[1] - your_accuracy) < 1e-6"),
        # Section 6: the pretrained model
        Claim("the kit's fully trained ResNet50 gets nearly every test image right (at least 0.98), more than yours",
              "pretrained_accuracy >= 0.98 and pretrained_accuracy >= test_accuracy"),
    ],
    "05_your_own_image.ipynb": [
        Claim("the pretrained model gets at least 0.98 of the SIGNS test images right",
              "np.mean(predicted == Y_test_orig.ravel()) >= 0.98"),
        Claim("the sample image of a 5 (drawn by the kit) reads as a 5, and the model is sure of it (over 90%)",
              "(lambda p: p.argmax() == 5 and p.max() > 0.9)("
              "model.predict(resnets_utils.load_image(resnets_utils.KIT_DIR / 'images' / 'sample_hand_5.jpg'), verbose=0)[0])"),
        # Section 3, the preprocessing mistake: the sample 2 prepared three ways, then the whole test set
        Claim("prepared as in training (x / 255), the sample 2 reads as a 2, and the model is sure of it (over 90%)",
              "readings['x / 255, as in training'].argmax() == 2 and readings['x / 255, as in training'].max() > 0.9"),
        Claim("both wrong inputs (0-255 pixels, ImageNet's preprocess_input) turn the 2 into another digit "
              "(p(2) below 0.1), and the model is as sure of that one (over 90%)",
              "all(p.argmax() != 2 and p[2] < 0.1 and p.max() > 0.9 "
              "for name, p in readings.items() if name != 'x / 255, as in training')"),
        Claim("prepared wrongly, every test image is read as the same digit, so the accuracy is one in six "
              "(the test set holds as many images of each digit)",
              "all(len(set(model.predict(prepare(X_test_orig), verbose=0).argmax(axis=1).tolist())) == 1 "
              "for name, prepare in preparations.items() if name != 'x / 255, as in training') "
              "and len(set(np.bincount(Y_test_orig.ravel()).tolist())) == 1"),
        Claim("with either wrong input the first BatchNorm passes values on hundreds of times larger than in "
              "training (its output's standard deviation over 100 times that for x / 255)",
              "(lambda first_norm: all(first_norm(batch).std() > 100 * first_norm(inputs['x / 255, as in training']).std() "
              "for name, batch in inputs.items() if name != 'x / 255, as in training'))("
              "lambda batch: np.asarray(tf.keras.Model(model.inputs, model.get_layer('bn_conv1').output)(batch)))"),
        Claim("with either wrong input the last layer's scores, before the softmax, come out far larger than for "
              "x / 255 (the largest over 10 times larger)",
              "(lambda scores: all(np.abs(scores(batch)).max() > 10 * np.abs(scores(inputs['x / 255, as in training'])).max() "
              "for name, batch in inputs.items() if name != 'x / 255, as in training'))("
              "lambda batch: np.asarray(tf.keras.Model(model.inputs, model.layers[-2].output)(batch)).reshape(len(batch), -1) "
              "@ np.asarray(model.layers[-1].kernel) + np.asarray(model.layers[-1].bias))"),
        # Section 4, pictures unlike the training images
        Claim("all three pictures unlike the training images come out \"not sure\": no digit reaches the line",
              "all(reading.digit is None and reading.confidence < not_sure for reading in unlike_readings.values())"),
        Claim("for the hand on its side the best guess is still the right digit; for the 3 on the tiled wall it is "
              "a 4, under the line",
              "unlike_readings['a 1 turned on its side'].probabilities.argmax() == 1 "
              "and unlike_readings['a 3 on a tiled wall'].probabilities.argmax() == 4"),
        Claim("the cat's probabilities are spread widest: no digit gets even a third, less than either hand's best guess",
              "(lambda cat: cat.confidence < 1 / 3 and all(cat.confidence < unlike_readings[what].confidence "
              "for what in ('a 3 on a tiled wall', 'a 1 turned on its side')))(unlike_readings['a cat, no hand'])"),
        # Section 5, find, then read
        Claim("shrunk whole to 64x64, the drawn whole photo's 2 is not read as a 2",
              "whole_reading.digit != 2"),
        Claim("one cell stands out, where the hand is; the cat's face and the wall stay dark (every cell away from "
              "the best one's neighbours scores under the no-hand line)",
              "(lambda row, col: all(scores[r, c] < finder.no_hand_below for r in range(16) for c in range(16) "
              "if max(abs(r - row), abs(c - col)) > 1))(*np.unravel_index(scores.argmax(), scores.shape))"),
        Claim("found and cut out, the hand is read as it was meant, a 2, with one hand found",
              "whole_photo_reading.digit == 2 and whole_photo_reading.hands == 1"),
        Claim("the cat has no hand, and gets no digit", "cat_reading.digit is None"),
    ],
}
