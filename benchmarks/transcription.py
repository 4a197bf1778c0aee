"""
Does transcription help? RAVDESS clips of held-out actors through the `multimodal-emotion-recognition` pipeline,
side by side in one run: the voice alone (`transcribe=False`), the voice with its transcript (`transcribe=True`), the
transcript alone, and the voice with its transcript only where the transcript's own answer is sure (its top
probability at least the model's `uncertain_below`), and the voice's and the transcript's own answers multiplied
(divided by the prior: each input's evidence counted once): accuracy and expected calibration error (15 bins) of
each, and how many answers the transcript changes, for better and for worse.

    python benchmarks/transcription.py --model .cache/demo/gia-mic-starter [--actors 21 22 23 24] [--every 1]

RAVDESS speakers say one of two lexically neutral sentences ("Kids are talking by the door", "Dogs are sitting by the
door") in every emotion: the words carry no emotion, so a transcript can only help by saying "neutral" when the voice
is; the question is how much it hurts elsewhere.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# RAVDESS's emotion code (third field of the file name) -> the starter's label
EMOTIONS = {
    "01": "neutral",
    "02": "neutral",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgusted",
    "08": "surprised",
}


def clips(ravdess: Path, actors: list[int], every: int) -> tuple[list[dict], list[str]]:
    paths = sorted(p for actor in actors for p in (ravdess / f"Actor_{actor:02d}").glob("*.flac"))[::every]
    items = [dict(zip(("audio", "sampling_rate"), sf.read(path, dtype="float32"))) for path in paths]
    return items, [EMOTIONS[path.name.split("-")[2]] for path in paths]


def probabilities(results: list[dict], labels: list[str]) -> np.ndarray:
    return np.array([[result["scores"][label] for label in labels] for result in results])


def report(name: str, answers: np.ndarray, truth: np.ndarray) -> None:
    from gia_mic.calibration import expected_calibration_error

    accuracy = float((answers.argmax(1) == truth).mean())
    print(f"| {name} | {accuracy:.3f} | {expected_calibration_error(answers, truth):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--model", type=Path, default=ROOT / ".cache" / "demo" / "gia-mic-starter")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--actors", type=int, nargs="+", default=[21, 22, 23, 24])
    parser.add_argument("--every", type=int, default=1, help="every n-th clip")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    from transformers import pipeline

    classifier = pipeline("multimodal-emotion-recognition", model=str(args.model), trust_remote_code=True)
    config = classifier.model.config
    labels = [config.id2label[i] for i in range(config.num_labels)]
    items, emotions = clips(args.data / "ravdess", args.actors, args.every)
    truth = np.array([labels.index(emotion) for emotion in emotions])
    start = time.perf_counter()
    batch = {"batch_size": args.batch_size, "explain": True}
    voice = probabilities(classifier(items, transcribe=False, **batch), labels)
    heard = classifier(items, transcribe=True, **batch)
    with_words = probabilities(heard, labels)
    words = probabilities(classifier([{"text": r["text"] or ""} for r in heard], **batch), labels)
    threshold = config.uncertain_below or 0.0
    sure = words.max(1) >= threshold
    gated = np.where(sure[:, None], with_words, voice)
    print(
        f"{len(items)} clips of actors {args.actors}, {time.perf_counter() - start:.0f} s; "
        f"`uncertain_below` {threshold:.3f}"
    )
    print("\n| answer | accuracy | ECE |\n|---|---:|---:|")
    report("the voice alone", voice, truth)
    report("the voice and its transcript", with_words, truth)
    report("the transcript alone", words, truth)
    report(f"the transcript only where it is sure ({int(sure.sum())} of {len(items)})", gated, truth)
    prior = np.array([config.target_prior[label] for label in labels]) if config.target_prior else 1 / len(labels)
    experts = (
        voice * words / prior
    )  # each input's evidence once, the prior once: p(y | a, t) if a and t are independent
    report("the voice and the transcript alone, multiplied (/ prior)", experts / experts.sum(1, keepdims=True), truth)
    before, after = voice.argmax(1) == truth, with_words.argmax(1) == truth
    changed = voice.argmax(1) != with_words.argmax(1)
    print(
        f"\nThe transcript changes {int(changed.sum())} answers: {int((changed & after).sum())} to right, "
        f"{int((changed & before).sum())} from right, {int((changed & ~before & ~after).sum())} wrong to wrong."
    )


if __name__ == "__main__":
    main()
