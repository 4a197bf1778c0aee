"""
Word error rate of the transcript `gia-mic analyze --speakers` makes of pyannote's real two-speaker sample
(`pyannote/audio/sample/sample.wav`), against its reference transcript (`sample.stm`): the starter's Whisper tiny.en
(English) against the multilingual Whisper base (`--language auto`), side by side, with the time each takes and the
languages found.

    python benchmarks/sample_transcript.py --model .cache/demo/gia-mic-starter --base models/whisper-base
"""

import argparse
import importlib.util
import os
import platform
import re
import time
from pathlib import Path


def words(text: str) -> list[str]:
    """Lower case, without punctuation (an apostrophe inside a word is kept)."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


def word_error_rate(reference: list[str], hypothesis: list[str]) -> float:
    """(substitutions + deletions + insertions) / reference words, by edit distance."""
    previous = list(range(len(hypothesis) + 1))
    for index, word in enumerate(reference, 1):
        current = [index]
        for column, heard in enumerate(hypothesis, 1):
            current.append(min(previous[column] + 1, current[-1] + 1, previous[column - 1] + (word != heard)))
        previous = current
    return previous[-1] / max(len(reference), 1)


def sample_folder() -> Path:
    spec = importlib.util.find_spec("pyannote.audio")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pyannote-audio is installed by `make test`: its sample is the recording measured")
    return Path(spec.submodule_search_locations[0]) / "sample"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--base", type=Path, required=True, help="gia-mic convert-whisper --size base --output DIR")
    args = parser.parse_args()
    from transformers import pipeline

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
    print(f"CPU: {cpu} ({os.cpu_count()} cores), Python {platform.python_version()}")
    folder = sample_folder()
    reference = words(" ".join(line.split(None, 5)[5] for line in (folder / "sample.stm").read_text().splitlines()))
    print("\n| Whisper | WER | words heard / reference | languages found | s |\n|---|---:|---:|---|---:|")
    for name, settings in (
        ("tiny.en (the starter's)", {}),
        ("base, --language auto", {"asr": str(args.base), "language": "auto"}),
    ):
        classifier = pipeline(
            "multimodal-emotion-recognition", model=str(args.model), trust_remote_code=True, **settings
        )
        started = time.perf_counter()
        analysis = classifier.analyze(str(folder / "sample.wav"), speakers=True)
        segments = list(analysis.segments)
        seconds = time.perf_counter() - started
        heard = words(" ".join(segment["text"] or "" for segment in segments))
        languages = sorted({segment.get("language") for segment in segments if segment.get("language")})
        print(
            f"| {name} | {word_error_rate(reference, heard):.3f} | {len(heard)}/{len(reference)} | "
            f"{', '.join(languages)} | {seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
