"""
Finding and aligning faces for the processor's `detect_faces`: dlib's HOG face detector, its CNN detector (MMOD) on
pictures where HOG finds none, and the 5-point landmarks that turn each face upright and frame it like FER-2013's
crops (the framing the face towers were trained on). Only detections above a confidence and of a plausible size
count; a picture without one has no face (never the whole picture instead).

Remote code: numpy and PIL; dlib (`pip install dlib-bin`) and its weights (`pip install face-recognition-models`,
which ships `mmod_human_face_detector.dat` and `shape_predictor_5_face_landmarks.dat`) are loaded on first use.
"""

import functools
import importlib.util
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image


# Detection works on a copy whose shorter side is at least DETECTION_MIN_SIDE (tight crops such as FER-2013's 48 x 48
# are enlarged, and padded by a quarter of their side so a face touching the border is found) and whose longer side
# is at most DETECTION_MAX_SIDE; the CNN detector, slower, on at most CNN_MAX_SIDE. A face is at least MIN_FACE
# pixels wide there.
DETECTION_MIN_SIDE, DETECTION_MAX_SIDE, CNN_MAX_SIDE, MIN_FACE = 192, 1024, 384, 24
# Scores from which a detection is a face: HOG's SVM margin, the MMOD CNN's confidence (chosen with
# `benchmarks/faces.py`: FER-2013 faces found, small faces in photographs found, none in photographs without a face).
# HOG looks at the picture as it is, then (where it found nothing) enlarged twice, for faces under its 80-pixel window.
HOG_MIN_SCORE, CNN_MIN_CONFIDENCE, HOG_UPSAMPLINGS = 0.0, 0.5, (0, 1)
# The aligned crop: its side in pixels, and the margin around the landmarks' face box (dlib's `padding`).
CHIP_SIZE, CHIP_PADDING = 96, 0.25
WEIGHTS = {"cnn": "mmod_human_face_detector.dat", "landmarks": "shape_predictor_5_face_landmarks.dat"}


class NoFaceFoundError(ValueError):
    """A face image or video in which the face detector found no face; `sample`: its index in the batch."""

    def __init__(self, message: str, sample: int = 0):
        super().__init__(message)
        self.sample = sample


def import_dlib():
    try:
        import dlib
    except ImportError as error:
        raise ImportError("Face detection (`detect_faces=True`) needs dlib: `pip install dlib-bin`.") from error
    return dlib


def weights_folder() -> str:
    """The folder of `face-recognition-models`' weight files (found without importing it: it needs setuptools)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "Face detection (`detect_faces=True`) needs dlib's face models: `pip install face-recognition-models`."
        )
    return os.path.join(spec.submodule_search_locations[0], "models")


@dataclass(frozen=True)
class FaceDetector:
    """dlib's detectors and 5-point landmark model, loaded once per process (`FaceDetector.load()`)."""

    hog: object
    cnn: object
    landmarks: object

    @classmethod
    @functools.cache
    def load(cls) -> "FaceDetector":
        dlib, folder = import_dlib(), weights_folder()
        return cls(
            dlib.get_frontal_face_detector(),
            dlib.cnn_face_detection_model_v1(os.path.join(folder, WEIGHTS["cnn"])),
            dlib.shape_predictor(os.path.join(folder, WEIGHTS["landmarks"])),
        )

    def face(self, frame: np.ndarray) -> np.ndarray | None:
        """The most confident face of an RGB frame, aligned upright (CHIP_SIZE square, RGB), or None."""
        work = detection_copy(frame)
        box = self.best_box(work)
        return None if box is None else self.chip(work, box)

    def chip(self, work: np.ndarray, box) -> np.ndarray:
        """The face in `box` of a detection copy, aligned upright (CHIP_SIZE square, RGB)."""
        return import_dlib().get_face_chip(work, self.landmarks(work, box), size=CHIP_SIZE, padding=CHIP_PADDING)

    def best_box(self, work: np.ndarray):
        """The highest-scoring plausible detection of a detection copy, or None."""
        found = self.boxes(work)
        return max(found, key=lambda pair: pair[0])[1] if found else None

    def boxes(self, work: np.ndarray) -> list[tuple[float, object]]:
        """
        Every plausible face of a detection copy as (score, box): HOG's, else the CNN's (on a copy of at most
        CNN_MAX_SIDE).
        """
        found = []
        for upsampling in HOG_UPSAMPLINGS:
            boxes, scores, _ = self.hog.run(work, upsampling, HOG_MIN_SCORE)
            found = [(score, box) for box, score in zip(boxes, scores) if plausible(box, work)]
            if found:
                return found
        scale = min(1.0, CNN_MAX_SIDE / max(work.shape[:2]))
        for detection in self.cnn(resized(work, scale), 0):
            box = scaled_box(detection.rect, 1 / scale)
            if detection.confidence >= CNN_MIN_CONFIDENCE and plausible(box, work):
                found.append((detection.confidence, box))
        return found


def plausible(box, work: np.ndarray) -> bool:
    """A face at least MIN_FACE pixels wide whose centre lies in the picture."""
    centre_x, centre_y = (box.left() + box.right()) / 2, (box.top() + box.bottom()) / 2
    inside = 0 <= centre_x < work.shape[1] and 0 <= centre_y < work.shape[0]
    return box.width() >= MIN_FACE and inside


def resized(picture: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return picture
    height, width = picture.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(picture).resize(size, method))


def scaled_box(box, factor: float):
    coordinates = (box.left(), box.top(), box.right(), box.bottom())
    return import_dlib().rectangle(*(round(value * factor) for value in coordinates))


def detection_copy(frame: np.ndarray) -> np.ndarray:
    """
    The frame as contiguous RGB uint8 at the detection scale; a small one enlarged and edge-padded. A huge one is
    first thinned by a whole step (a view), so no full-size copy is ever made.
    """
    step = max(1, int(max(frame.shape[:2]) // (2 * DETECTION_MAX_SIDE)))
    frame = np.ascontiguousarray(frame[::step, ::step], dtype=np.uint8)
    height, width = frame.shape[:2]
    if min(height, width) < DETECTION_MIN_SIDE:
        work = resized(frame, DETECTION_MIN_SIDE / min(height, width))
        pad = min(work.shape[:2]) // 4
        return np.ascontiguousarray(np.pad(work, ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
    return np.ascontiguousarray(resized(frame, min(1.0, DETECTION_MAX_SIDE / max(height, width))))


def crop_faces(clips: list[list[np.ndarray]], detector: FaceDetector | None = None) -> list[list[np.ndarray]]:
    """
    Each frame (RGB array) cut to its face, aligned. Frames without a face are dropped; a sample with none is a
    `NoFaceFoundError`.
    """
    detector = detector or FaceDetector.load()
    cropped = []
    for index, clip in enumerate(clips):
        faces = [face for face in map(detector.face, clip) if face is not None]
        if not faces:
            what = "image" if len(clip) == 1 else f"any of the {len(clip)} frames"
            raise NoFaceFoundError(f"No face was found in {what} of sample {index}.", index)
        cropped.append(faces)
    return cropped
