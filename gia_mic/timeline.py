"""
A recording's emotion timeline (the result of the `multimodal-emotion-recognition` pipeline on a recording) as the
files people read: `timeline.csv` (one row per segment), `timeline.json` (everything), `timeline.png` (each
emotion's probability over time, segments shaded by their predicted emotion; with speakers, a lane for each),
`speakers.csv` (with speakers: each one's summary), and one terminal line per segment.
"""

import csv
import json
from pathlib import Path

import matplotlib


matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


FILES = ("timeline.csv", "timeline.json", "timeline.png")
SPEAKERS_FILE = "speakers.csv"  # with speakers told apart


def clock(seconds: float) -> str:
    """1:02:03.4 / 2:03.4 / 0:03.4"""
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:04.1f}" if hours else f"{minutes}:{rest:04.1f}"


def summary_line(segment: dict) -> str:
    """`0:01.0-0:02.9  happy 0.62  "Kids are talking by the door."  (face: sad 0.70)`"""
    span = f"{clock(segment['start'])}-{clock(segment['end'])}" + (
        f"  {segment['speaker']}" if "speaker" in segment else ""
    )
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
    who = [key for key in ("speaker", "face_id") if any(key in s for s in segments)]
    words = ["text", "language"] if any("language" in s for s in segments) else ["text"]
    columns = ["start", "end", *who, *words, "label", "score", "uncertain", *(f"p_{label}" for label in labels)]
    columns += [f"{name}_{what}" for name in inputs for what in ("label", "score")]
    columns += [f"gate_{pair}" for pair in gates] + ["notes"]
    table = []
    for segment in segments:
        row = {key: segment.get(key) for key in ("start", "end", *who, *words, "label", "score", "uncertain")}
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
    figure = timeline_figure(timeline, labels, title)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def timeline_figure(timeline: dict, labels: list[str], title: str):
    """Each emotion's probability as a step line across its segments (gaps where there is no speech), and each
    segment shaded in the colour of its predicted emotion; with speakers, below it one lane per speaker, each of
    their utterances a block in the colour of its emotion."""
    colours = {label: plt.get_cmap("tab10")(index % 10) for index, label in enumerate(labels)}
    width = min(40.0, max(8.0, timeline["duration"] / 20))
    speakers = [own["speaker"] for own in timeline.get("speakers", [])]
    if speakers:
        height = 3.6 + 0.45 * len(speakers)
        figure, (axis, lanes) = plt.subplots(
            2,
            1,
            figsize=(width, height),
            sharex=True,
            gridspec_kw={"height_ratios": [3.6, 0.45 * len(speakers) + 0.4]},
        )
    else:
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
    axis.set_ylabel("probability")
    axis.set_title(title if timeline["segments"] else f"{title}: no speech found")
    axis.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    if speakers:
        draw_lanes(lanes, timeline["segments"], speakers, colours)
        lanes.set_xlabel("time (s)")
    else:
        axis.set_xlabel("time (s)")
    figure.tight_layout()
    return figure


def draw_lanes(axis, segments: list[dict], speakers: list[str], colours: dict) -> None:
    """One lane per speaker (the first at the top); each utterance a block coloured by its emotion, grey if none."""
    for row, speaker in enumerate(speakers):
        own = [s for s in segments if s.get("speaker") == speaker]
        spans = [(s["start"], s["end"] - s["start"]) for s in own]
        faces = [colours[s["label"]] if s["label"] is not None else "lightgrey" for s in own]
        axis.broken_barh(spans, (len(speakers) - 1 - row - 0.35, 0.7), facecolors=faces, edgecolor="white", lw=0.5)
    axis.set_yticks(range(len(speakers)), list(reversed(speakers)), fontsize=9)
    axis.set_ylim(-0.6, len(speakers) - 0.4)
    axis.set_ylabel("speaker")


def speaker_lines(summary: list[dict]) -> list[str]:
    """`Ann  12.3 s, 5 utterances, mostly neutral (60 %), 2 changes: 0:12.3 neutral -> angry, ...`"""
    lines = []
    for own in summary:
        mostly = f"mostly {own['emotion']} ({own['shares'][own['emotion']]:.0%})" if own["emotion"] else "no emotion"
        changes = ", ".join(f"{clock(c['time'])} {c['from']} -> {c['to']}" for c in own["changes"])
        counted = f"{len(own['changes'])} change{'s' if len(own['changes']) != 1 else ''}"
        face = f", face {own['face_id']}" if own.get("face_id") else ""
        lines.append(
            f"{own['speaker']}  {own['seconds']:.1f} s, {own['utterances']} utterances{face}, {mostly}, {counted}"
            + (f": {changes}" if changes else "")
        )
    return lines


def write_speakers(timeline: dict, labels: list[str], path: Path) -> None:
    """`speakers.csv`: per speaker, speaking time, utterances, their face (in a video), the most frequent emotion, each
    emotion's share of their time, and the moments their emotion changed."""
    faces = ["face_id"] if any("face_id" in own for own in timeline["speakers"]) else []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        share_columns = [f"share_{label}" for label in labels]
        writer.writerow(["speaker", "seconds", "utterances", *faces, "emotion", *share_columns, "changes"])
        for own in timeline["speakers"]:
            changes = "; ".join(f"{c['time']:.1f} {c['from']}->{c['to']}" for c in own["changes"])
            shares = [own["shares"][label] for label in labels]
            counts = [own["speaker"], own["seconds"], own["utterances"], *(own[key] for key in faces)]
            writer.writerow([*counts, own["emotion"], *shares, changes])


def write_timeline(timeline: dict, labels: list[str], folder: Path, recording: str) -> None:
    """The three files in `folder` (the caller makes the folder safely: `gia_mic.folders.write_folder`)."""
    write_csv(timeline, labels, folder / "timeline.csv")
    (folder / "timeline.json").write_text(
        json.dumps({"recording": recording, "labels": labels, **timeline}, indent=2), encoding="utf-8"
    )
    plot(timeline, labels, folder / "timeline.png", f"Emotions in {recording}")
    if "speakers" in timeline:
        write_speakers(timeline, labels, folder / SPEAKERS_FILE)
