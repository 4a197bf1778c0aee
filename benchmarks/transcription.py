"""
Does transcription help? RAVDESS clips of held-out actors through the `multimodal-emotion-recognition` pipeline,
side by side in one run: the voice alone (`transcribe=False`); the pipeline's default (`transcribe=True`: the words
used where their own answer is sure, its top probability at least the model's `uncertain_below`); the words always
used (the transcript given as text); the transcript alone; and the voice's and the transcript's own answers
multiplied (divided by the prior: each input's evidence counted once). Accuracy and expected calibration error
(15 bins) of each, and how many answers the words change when always used, for better and for worse.

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
    default = probabilities(heard, labels)
    transcripts = [result["text"] or "" for result in heard]
    always = probabilities(classifier([{**i, "text": t} for i, t in zip(items, transcripts)], **batch), labels)
    words = probabilities(classifier([{"text": t} for t in transcripts], **batch), labels)
    used = sum("text" in result["inputs"] for result in heard)
    print(f"{len(items)} clips of actors {args.actors}, {time.perf_counter() - start:.0f} s")
    print("\n| answer | accuracy | ECE |\n|---|---:|---:|")
    report("the voice alone", voice, truth)
    report(f"transcription on, the default (words used in {used} of {len(items)})", default, truth)
    report("the words always used", always, truth)
    report("the words alone", words, truth)
    prior = np.array([config.target_prior[label] for label in labels]) if config.target_prior else 1 / len(labels)
    experts = (
        voice * words / prior
    )  # each input's evidence once, the prior once: p(y | a, t) if a and t are independent
    report("the voice and the words alone, multiplied (/ prior)", experts / experts.sum(1, keepdims=True), truth)
    before, after = voice.argmax(1) == truth, always.argmax(1) == truth
    changed = voice.argmax(1) != always.argmax(1)
    print(
        f"\nWords always used change {int(changed.sum())} answers: {int((changed & after).sum())} to right, "
        f"{int((changed & before).sum())} from right, {int((changed & ~before & ~after).sum())} wrong to wrong."
    )


if __name__ == "__main__":
    main()
