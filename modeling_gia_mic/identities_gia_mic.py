"""
Whose face is whose. In a video whose speakers are told apart, every face in view at the frames each utterance is read
at is found; faces are followed from frame to frame within the utterance (boxes that overlap are one track), each
track is described once by dlib's face-recognition ResNet (128 numbers; two pictures of one person lie under 0.6
apart), and the tracks are clustered into identities (dlib's Chinese whispers). Each speaker is given the identity in
view more while they speak than while the others do, and each utterance then reads its speaker's face (or, by choice,
the largest face in view).

Remote code: numpy; dlib and `face-recognition-models` (its `dlib_face_recognition_resnet_model_v1.dat`), loaded on
first use.
"""

import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from .faces_gia_mic import FaceDetector, detection_copy, import_dlib, weights_folder
from .speakers_gia_mic import first_appearance_order


RECOGNITION_WEIGHTS = "dlib_face_recognition_resnet_model_v1.dat"
IDENTITY_DISTANCE = 0.5  # tracks described closer than this are one person (dlib's ResNet: one person under 0.6)
TRACK_OVERLAP = 0.3  # a box continues a track of the frame before when their intersection over union is at least this
Box = tuple[int, int, int, int]  # left, top, right, bottom in the frame's detection copy


@dataclass(frozen=True)
class FaceRecognizer:
    """dlib's face-recognition ResNet, loaded once per process (`FaceRecognizer.load()`)."""

    model: object

    @classmethod
    @functools.cache
    def load(cls) -> "FaceRecognizer":
        return cls(import_dlib().face_recognition_model_v1(os.path.join(weights_folder(), RECOGNITION_WEIGHTS)))

    def describe(self, detector: FaceDetector, work: np.ndarray, box: Box) -> np.ndarray:
        """The 128 numbers of the face in `box` of a detection copy (aligned by its 5 landmarks)."""
        landmarks = detector.landmarks(work, rectangle(box))
        return np.asarray(self.model.compute_face_descriptor(work, landmarks), dtype=np.float32)


def rectangle(box: Box):
    return import_dlib().rectangle(*box)


def area(box: Box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def overlap(first: Box, second: Box) -> float:
    """Intersection over union of two boxes."""
    width = min(first[2], second[2]) - max(first[0], second[0])
    height = min(first[3], second[3]) - max(first[1], second[1])
    common = max(width, 0) * max(height, 0)
    return common / max(area(first) + area(second) - common, 1)


def link_tracks(frames: list[list[Box]]) -> list[list[tuple[int, int]]]:
    """
    The boxes of consecutive frames linked into tracks, each a list of (frame, box index): a box continues the track
    whose box in the frame before overlaps it most (at least TRACK_OVERLAP), else it starts a track.
    """
    tracks: list[list[tuple[int, int]]] = []
    open_tracks: list[int] = []  # tracks with a box in the frame before
    for frame, boxes in enumerate(frames):
        pairs = sorted(
            (
                (overlap(frames[frame - 1][tracks[t][-1][1]], box), t, index)
                for t in open_tracks
                for index, box in enumerate(boxes)
            ),
            reverse=True,
        )
        continued, taken, now_open = set(), set(), []
        for score, track, index in pairs:
            if score >= TRACK_OVERLAP and track not in continued and index not in taken:
                tracks[track].append((frame, index))
                continued.add(track)
                taken.add(index)
                now_open.append(track)
        for index in range(len(boxes)):
            if index not in taken:
                tracks.append([(frame, index)])
                now_open.append(len(tracks) - 1)
        open_tracks = now_open
    return tracks


@dataclass
class UtteranceFace:
    """The face an utterance reads: its identity's name, the box in each frame where it is in view, and a note."""

    face_id: str | None
    boxes: dict[int, Box]  # frame index -> box
    note: str | None = None


@dataclass
class FacesInView:
    """Every utterance's faces, frame by frame, as (box, identity); identities numbered by first appearance."""

    frames: dict[float, list[list[tuple[Box, int]]]] = field(default_factory=dict)  # utterance start -> frames

    @property
    def identities(self) -> list[int]:
        return sorted({identity for frames in self.frames.values() for faces in frames for _, identity in faces})

    def speaker_identities(self, speaker_of: dict[float, int]) -> dict[int, int]:
        """
        Each speaker's own identity: the one whose share of the frames it is in view in is highest while that
        speaker talks compared with while the others do; the most telling pairs first, each identity and speaker
        once, only where it is seen more while they talk.
        """
        seen: dict[int, np.ndarray] = {}  # speaker -> frames each identity is in view in
        heard: dict[int, int] = {}  # speaker -> frames
        count = len(self.identities)
        for start, frames in self.frames.items():
            speaker = speaker_of[start]
            seen.setdefault(speaker, np.zeros(count))
            heard[speaker] = heard.get(speaker, 0) + len(frames)
            for faces in frames:
                for identity in {identity for _, identity in faces}:
                    seen[speaker][identity] += 1
        scores = []
        for speaker in seen:
            own = seen[speaker] / max(heard[speaker], 1)
            others = sum((seen[s] for s in seen if s != speaker), np.zeros(count))
            others_heard = sum(heard[s] for s in seen if s != speaker)
            lift = own - (others / others_heard if others_heard else 0.0)
            scores += [(float(lift[identity]), speaker, identity) for identity in range(count)]
        given: dict[int, int] = {}
        for lift, speaker, identity in sorted(scores, reverse=True):
            if lift > 0 and speaker not in given and identity not in given.values():
                given[speaker] = identity
        return given

    def choose(self, speaker_of: dict[float, int], names: dict[int, str], choice: str) -> dict[float, UtteranceFace]:
        """
        Each utterance's face: with `choice` "speaker", its speaker's own identity wherever it is in view (the largest
        face where the speaker has none); with "largest", the largest face in each frame.
        """
        own = self.speaker_identities(speaker_of) if choice == "speaker" else {}
        chosen = {}
        for start, frames in self.frames.items():
            speaker = speaker_of[start]
            if choice == "speaker" and speaker in own:
                boxes = {i: largest([f for f in faces if f[1] == own[speaker]]) for i, faces in enumerate(frames)}
                boxes = {i: found for i, found in boxes.items() if found is not None}
                note = None if boxes else f"{names[speaker]}'s face is not in view: the face input was left out."
                chosen[start] = UtteranceFace(face_name(own[speaker]) if boxes else None, boxes_only(boxes), note)
                continue
            boxes = {i: largest(faces) for i, faces in enumerate(frames) if faces}
            note = None
            if choice == "speaker" and boxes:
                note = f"{names[speaker]}'s own face could not be told among those in view: the largest was used."
            chosen[start] = UtteranceFace(most_seen(boxes.values()), boxes_only(boxes), note)
        return chosen


def largest(faces: list[tuple[Box, int]]) -> tuple[Box, int] | None:
    return max(faces, key=lambda face: area(face[0]), default=None)


def boxes_only(faces: dict[int, tuple[Box, int]]) -> dict[int, Box]:
    return {index: box for index, (box, _) in faces.items()}


def most_seen(faces: Iterable[tuple[Box, int]]) -> str | None:
    identities = [identity for _, identity in faces]
    return face_name(max(set(identities), key=identities.count)) if identities else None


def face_name(identity: int) -> str:
    return f"FACE_{identity:02d}"


def find_faces(
    utterances: Iterable,
    detector: FaceDetector | None = None,
    recognizer: FaceRecognizer | None = None,
    progress: Callable[[], None] | None = None,
) -> FacesInView:
    """
    The faces in view in each utterance's frames (`SegmentMedia` with `frames`, from `cut_segments`), tracked,
    described and clustered into identities. Only boxes and descriptors are kept, never a picture.
    """
    detector, recognizer = detector or FaceDetector.load(), recognizer or FaceRecognizer.load()
    found: dict[float, list[list[Box]]] = {}
    track_of: dict[tuple[float, int, int], int] = {}  # (utterance, frame, box) -> track
    descriptors = []
    for utterance in utterances:
        works = [detection_copy(frame) for frame in utterance.frames or []]
        boxes = [[box_of(rect) for _, rect in detector.boxes(work)] for work in works]

        def describe(frame: int, index: int, works=works, boxes=boxes) -> np.ndarray:
            return recognizer.describe(detector, works[frame], boxes[frame][index])

        for track in link_tracks(boxes):
            for places, descriptor in described(track, describe):
                descriptors.append(descriptor)
                track_of.update({(utterance.start, f, i): len(descriptors) - 1 for f, i in places})
        found[utterance.start] = boxes
        if progress is not None:
            progress()
    identity = first_appearance_order(np.array(clustered(descriptors), dtype=int)).tolist()
    return FacesInView(
        {
            start: [
                [(box, identity[track_of[start, f, i]]) for i, box in enumerate(faces)]
                for f, faces in enumerate(frames)
            ]
            for start, frames in found.items()
        }
    )


def described(
    track: list[tuple[int, int]], describe: Callable[[int, int], np.ndarray]
) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
    """
    A track's descriptor, from its first and last faces where they are one person; where they are not (a cut between
    two people framed alike, whose boxes overlap), each face of it on its own.
    """
    first = describe(*track[0])
    if len(track) == 1:
        return [(track, first)]
    last = describe(*track[-1])
    if np.linalg.norm(first - last) < IDENTITY_DISTANCE:
        return [(track, (first + last) / 2)]
    middle = [([place], describe(*place)) for place in track[1:-1]]
    return [([track[0]], first), *middle, ([track[-1]], last)]


def box_of(rect) -> Box:
    return (rect.left(), rect.top(), rect.right(), rect.bottom())


def clustered(descriptors: list[np.ndarray]) -> list[int]:
    """An identity per descriptor: dlib's Chinese whispers over the pairs closer than IDENTITY_DISTANCE."""
    if len(descriptors) < 2:
        return [0] * len(descriptors)
    dlib = import_dlib()
    return list(dlib.chinese_whispers_clustering([dlib.vector(d.tolist()) for d in descriptors], IDENTITY_DISTANCE))
