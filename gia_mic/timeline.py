"""
A recording's emotion timeline (the result of the `multimodal-emotion-recognition` pipeline on a recording) as the
files people read: `timeline.csv` (one row per segment), `timeline.json` (everything), `timeline.png` (each
emotion's probability over time, segments shaded by their predicted emotion), and one terminal line per segment.
"""

import csv
import json
from pathlib import Path

import matplotlib


matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


FILES = ("timeline.csv", "timeline.json", "timeline.png")


def clock(seconds: float) -> str:
    """1:02:03.4 / 2:03.4 / 0:03.4"""
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:04.1f}" if hours else f"{minutes}:{rest:04.1f}"


def summary_line(segment: dict) -> str:
    """`0:01.0-0:02.9  happy 0.62  "Kids are talking by the door."  (face: sad 0.70)`"""
    span = f"{clock(segment['start'])}-{clock(segment['end'])}"
    if segment["label"] is None:
        return f"{span}  (no prediction: {' '.join(segment['notes'])})"
    text = f'  "{segment["text"]}"' if segment["text"] else ""
    disagreeing = [
        f"{name}: {own['label']} {own['score']:.2f}"
        for name, own in segment["inputs"].items()
        if own["label"] != segment["label"]
    ]
    others = f"  ({'; '.join(disagreeing)})" if disagreeing else ""
    unsure = " (not sure)" if segment.get("uncertain") else ""
    return f"{span}  {segment['label']} {segment['score']:.2f}{unsure}{text}{others}"


def rows(timeline: dict, labels: list[str]) -> tuple[list[str], list[dict]]:
    """The CSV's columns and rows: span, words, label, each class's probability, each input's own prediction (only
    the inputs the recording had: an audio file has no face column), the gates, and notes."""
    segments = timeline["segments"]
    inputs = [name for name in ("text", "speech", "face") if any(name in s["inputs"] for s in segments)]
    gates = list(dict.fromkeys(pair for s in segments for pair in s["gates"]))
    columns = ["start", "end", "text", "label", "score", "uncertain", *(f"p_{label}" for label in labels)]
    columns += [f"{name}_{what}" for name in inputs for what in ("label", "score")]
    columns += [f"gate_{pair}" for pair in gates] + ["notes"]
    table = []
    for segment in segments:
        row = {key: segment.get(key) for key in ("start", "end", "text", "label", "score", "uncertain")}
        row.update({f"p_{label}": segment["scores"].get(label) for label in labels})
        for name in inputs:
            own = segment["inputs"].get(name, {})
            row.update({f"{name}_label": own.get("label"), f"{name}_score": own.get("score")})
        row.update({f"gate_{pair}": segment["gates"].get(pair) for pair in gates})
        row["notes"] = " ".join(segment["notes"])
        table.append(row)
    return columns, table


def write_csv(timeline: dict, labels: list[str], path: Path) -> None:
    columns, table = rows(timeline, labels)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(
            {k: (round(v, 4) if isinstance(v, float) and k not in ("start", "end") else v) for k, v in row.items()}
            for row in table
        )


def plot(timeline: dict, labels: list[str], path: Path, title: str) -> None:
    """Each emotion's probability as a step line across its segments (gaps where there is no speech), and each
    segment shaded in the colour of its predicted emotion."""
    colours = {label: plt.get_cmap("tab10")(index % 10) for index, label in enumerate(labels)}
    width = min(40.0, max(8.0, timeline["duration"] / 20))
    figure, axis = plt.subplots(figsize=(width, 3.6))
    for segment in timeline["segments"]:
        if segment["label"] is not None:
            axis.axvspan(segment["start"], segment["end"], color=colours[segment["label"]], alpha=0.15, lw=0)
    for label in labels:
        times, values = [], []
        for segment in timeline["segments"]:
            if segment["label"] is None:
                continue
            if times and segment["start"] > times[-1]:  # a pause: break the line
                times.append(times[-1])
                values.append(float("nan"))
            times += [segment["start"], segment["end"]]
            values += [segment["scores"][label]] * 2
        axis.plot(times, values, color=colours[label], lw=1.6, label=label)
    axis.set_xlim(0, max(timeline["duration"], 1e-3))
    axis.set_ylim(0, 1)
    axis.set_xlabel("time (s)")
    axis.set_ylabel("probability")
    axis.set_title(title if timeline["segments"] else f"{title}: no speech found")
    axis.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_timeline(timeline: dict, labels: list[str], folder: Path, recording: str) -> None:
    """The three files in `folder` (the caller makes the folder safely: `gia_mic.folders.write_folder`)."""
    write_csv(timeline, labels, folder / "timeline.csv")
    (folder / "timeline.json").write_text(
        json.dumps({"recording": recording, "labels": labels, **timeline}, indent=2), encoding="utf-8"
    )
    plot(timeline, labels, folder / "timeline.png", f"Emotions in {recording}")
