"""
Synthetic IEMOCAP releases in the exact layout and file formats of `IEMOCAP_full_release/` (SPEC section 6), with
tiny audio and video. The real corpus may not be redistributed, so tests and benchmarks build these instead; users can
run the whole pipeline on one before they hold the real release.

    python -m dataset_scripts.synthetic_iemocap --output /tmp/IEMOCAP_full_release [--full-size]
"""

import argparse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm


# Label totals of the real release (SPEC section 6): 10,039 utterances.
RELEASE_TOTALS = Counter(
    {
        "xxx": 2507,
        "fru": 1849,
        "neu": 1708,
        "ang": 1103,
        "sad": 1084,
        "exc": 1041,
        "hap": 595,
        "sur": 107,
        "fea": 40,
        "oth": 3,
        "dis": 2,
    }
)
VIDEO_FPS = 10


@dataclass(frozen=True)
class SyntheticUtterance:
    suffix: str  # speaker letter + 3 digits, e.g. "F000"
    emotion: str
    start: float
    end: float
    text: str
    vad: tuple[float, float, float] = (2.5, 2.5, 2.5)


def evaluation_text(dialog: str, utterances: list[SyntheticUtterance]) -> str:
    """An EmoEvaluation file: header, then per utterance a summary line and annotator detail lines."""
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for u in utterances:
        v, a, d = u.vad
        lines += [
            f"[{u.start:.4f} - {u.end:.4f}]\t{dialog}_{u.suffix}\t{u.emotion}\t[{v:.4f}, {a:.4f}, {d:.4f}]",
            "C-E2:\tNeutral;\t()",
            "C-E3:\tFrustration; Anger;\t(annoyed)",
            "A-E3:\tval 3; act 2; dom  2;\t()",
            "",
        ]
    return "\n".join(lines) + "\n"


def transcription_text(dialog: str, utterances: list[SyntheticUtterance]) -> str:
    """A transcription file, with the noise lines the real release has between utterances."""
    lines = []
    for index, u in enumerate(utterances):
        lines.append(f"{dialog}_{u.suffix} [{u.start:08.4f}-{u.end:08.4f}]: {u.text}")
        if index % 2 == 0:
            lines.append(f"{u.suffix[0]}: [BREATHING]")
    return "\n".join(lines) + "\n"


def utterance_audio(u: SyntheticUtterance, seconds: float | None) -> np.ndarray:
    duration = seconds if seconds is not None else u.end - u.start
    t = np.arange(round(16000 * duration)) / 16000
    return (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def write_dialog_video(path: Path, duration: float) -> None:
    """An MPEG-4 (DivX-like) AVI whose frame at time t has grey level 40*t (t in seconds), for checking spans."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=VIDEO_FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        for index in range(int(duration * VIDEO_FPS) + 1):
            grey = min(255, round(40 * index / VIDEO_FPS))
            image = np.full((32, 64, 3), grey, dtype=np.uint8)
            image[:, 32:, 0] = 255  # the right half (the other actor) is reddish
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_release(
    root: Path,
    dialogs: dict[str, list[SyntheticUtterance]],
    audio_seconds: float | None = None,
    with_video: bool = False,
    progress: bool = False,
) -> Path:
    """Write `root/SessionN/...` for the given dialogs (dialog names start with `SesNN`)."""
    for dialog, utterances in tqdm(dialogs.items(), desc="Writing dialogs", disable=not progress):
        session = root / f"Session{int(dialog[3:5])}"
        for folder in ("dialog/EmoEvaluation", "dialog/transcriptions", f"sentences/wav/{dialog}"):
            (session / folder).mkdir(parents=True, exist_ok=True)
        (session / "dialog/EmoEvaluation" / f"{dialog}.txt").write_text(evaluation_text(dialog, utterances))
        (session / "dialog/transcriptions" / f"{dialog}.txt").write_text(transcription_text(dialog, utterances))
        for u in utterances:
            sf.write(
                session / "sentences/wav" / dialog / f"{dialog}_{u.suffix}.wav",
                utterance_audio(u, audio_seconds),
                16000,
                subtype="PCM_16",
            )
        if with_video:
            write_dialog_video(session / "dialog/avi/DivX" / f"{dialog}.avi", max(u.end for u in utterances) + 0.5)
    return root


MINIATURE = {
    "Ses01F_impro01": [
        SyntheticUtterance("F000", "neu", 0.5, 1.5, "Excuse me.", (2.5, 2.5, 2.5)),
        SyntheticUtterance("M000", "fru", 1.6, 2.4, "Do you have your forms?", (2.0, 3.5, 3.5)),
        SyntheticUtterance("F001", "ang", 2.5, 3.9, "I already gave them to you!", (1.5, 4.0, 4.0)),
        SyntheticUtterance("M001", "xxx", 4.0, 4.6, "Yeah.", (2.5, 2.0, 2.0)),
    ],
    "Ses01F_script01_1": [
        SyntheticUtterance("F000", "hap", 0.2, 1.1, "What a lovely day.", (4.0, 3.0, 3.0)),
        SyntheticUtterance("M000", "exc", 1.2, 2.0, "We won the lottery!", (4.5, 4.5, 3.0)),
    ],
    "Ses01M_script01_2": [
        SyntheticUtterance("M000", "sad", 0.3, 1.8, "She is gone.", (1.5, 1.5, 2.0)),
        SyntheticUtterance("F000", "oth", 1.9, 2.5, "Hmm.", (3.0, 2.0, 2.5)),
    ],
    "Ses02M_impro05a": [SyntheticUtterance("M000", "neu", 0.1, 0.9, "Is this seat taken?")],
    "Ses02M_impro05b": [SyntheticUtterance("F000", "sad", 0.4, 1.6, "I lost my job today.", (1.0, 2.0, 1.5))],
    "Ses03F_impro02": [SyntheticUtterance("F000", "ang", 0.2, 1.0, "Get out.", (1.0, 4.5, 4.5))],
    "Ses04M_script02_1": [SyntheticUtterance("M000", "hap", 0.2, 1.3, "Happy birthday!", (4.5, 3.5, 3.0))],
    "Ses05F_impro03": [SyntheticUtterance("F000", "exc", 0.3, 1.2, "I got the part!", (4.5, 4.0, 3.5))],
}


def write_miniature_release(root: Path, with_video: bool = False) -> Path:
    """A small release covering the real format's cases (see MINIATURE), every session present."""
    return write_release(root, MINIATURE, with_video=with_video)


def write_full_size_release(
    root: Path, audio_seconds: float = 0.02, scale: float = 1.0, progress: bool = True
) -> Path:
    """
    A release with the real label totals (10,039 utterances at `scale=1`), spread over 5 sessions x 2 speakers x
    improvised/scripted dialogs of 30 utterances, with `audio_seconds` of audio each. `scale` shrinks every total
    (for memory-growth measurements).
    """
    totals = Counter({code: max(1, round(count * scale)) for code, count in RELEASE_TOTALS.items()})
    rng = np.random.default_rng(0)
    emotions = rng.permutation([code for code, count in totals.items() for _ in range(count)])
    dialogs, index = {}, 0
    while index < len(emotions):
        number = len(dialogs)
        session, kind = number % 5 + 1, ("impro" if number % 2 == 0 else "script")
        dialog = f"Ses{session:02d}{'FM'[number // 5 % 2]}_{kind}{number // 10 + 1:02d}" + (
            "_1" if kind == "script" else ""
        )
        chunk = emotions[index : index + 30]
        dialogs[dialog] = [
            SyntheticUtterance(f"{'FM'[i % 2]}{i // 2:03d}", str(code), 1.0 * i, 1.0 * i + 0.8, f"Utterance {i}.")
            for i, code in enumerate(chunk)
        ]
        index += len(chunk)
    return write_release(root, dialogs, audio_seconds=audio_seconds, progress=progress)


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic IEMOCAP release in the real layout.")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--full-size", action="store_true", help="10,039 utterances with the real label totals")
    parser.add_argument("--with-video", action="store_true", help="dialog videos (miniature release only)")
    args = parser.parse_args()
    if args.full_size:
        write_full_size_release(args.output)
    else:
        write_miniature_release(args.output, with_video=args.with_video)
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
