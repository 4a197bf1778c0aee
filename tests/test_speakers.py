"""
Who speaks when (issue 24.1): Resemblyzer's GE2E speaker encoder converted from its wheel, windows of speech clustered
into speakers, turns cut where the speaker changes. Real voices: RAVDESS actors the starter never trained on, taking
turns in conversations assembled in the test, and pyannote's real two-speaker sample; the diarization error rate by
hand on a small case and through pyannote.metrics.
"""

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import IN_CI, SHARED_DATA, installed
from diarization import conversation, diarization_error_rate, pyannote_sample, speech_spans

from gia_mic.resemblyzer_ge2e import convert_resemblyzer
from modeling_gia_mic.recording_gia_mic import VoiceActivityDetector
from modeling_gia_mic.speakers_gia_mic import (
    DiarizationOptions,
    SpeakerEncoder,
    cut_windows,
    diarization_options,
    diarize,
    recording_windows,
    smoothed_runs,
    speaker_summary,
    window_spans,
)


def packaged(name: str) -> None:
    """A package whose files are read, never imported (Resemblyzer's and pyannote's own imports need more)."""
    if importlib.util.find_spec(name.split(".")[0]) is None or importlib.util.find_spec(name) is None:
        assert not IN_CI, f"{name} is installed by `make test`"
        pytest.skip(f"{name} is installed by `make test`")


needs_ravdess = pytest.mark.skipif(not (SHARED_DATA / "ravdess").is_dir(), reason="needs RAVDESS in ../shared/data")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> SpeakerEncoder:
    packaged("resemblyzer")
    return SpeakerEncoder.from_pretrained(convert_resemblyzer(tmp_path_factory.mktemp("speakers")))


@pytest.fixture(scope="module")
def detector() -> VoiceActivityDetector:
    packaged("silero_vad")  # importing it would set torch to one thread for the rest of the tests
    return VoiceActivityDetector.from_pretrained()


def test_the_error_rate_by_hand():
    reference = [(0.0, 2.0, "ann"), (2.0, 4.0, "bob")]
    assert diarization_error_rate(reference, [(0.0, 2.0, 7), (2.0, 4.0, 3)], collar=0) == 0.0, "names do not matter"
    assert diarization_error_rate(reference, [(0.0, 2.0, 0), (2.0, 3.0, 1), (3.0, 4.0, 0)], collar=0) == pytest.approx(
        0.25, abs=0.01
    ), "one second of four given to the wrong speaker"
    assert diarization_error_rate(reference, [(0.0, 4.0, 0)], collar=0) == pytest.approx(0.5, abs=0.01)
    assert diarization_error_rate(reference, [(0.0, 1.0, 0)], collar=0) == pytest.approx(0.75, abs=0.01), "missed"
    with_noise = [(0.0, 2.0, 0), (2.0, 4.0, 1), (5.0, 6.0, 1)]
    assert diarization_error_rate(reference, with_noise, collar=0) == pytest.approx(0.25, abs=0.01), "false alarm"
    assert diarization_error_rate(reference, [(0.0, 2.2, 0), (2.2, 4.0, 1)], collar=0.25) == 0.0, "inside the collar"


@needs_ravdess
def test_the_encoder_tells_actors_apart(encoder):
    """Two sentences of one actor are more alike than sentences of two actors (RAVDESS 21-24, four emotions each)."""
    import recordings

    embeddings, actors = [], []
    for actor in (21, 22, 23, 24):
        for clip in sorted((SHARED_DATA / "ravdess" / f"Actor_{actor:02d}").glob("*.flac"))[::15]:
            speech = recordings.trimmed_speech(clip)
            embeddings.append(encoder.embed(cut_windows(speech, [(0.0, 1.6)], 1.6))[0])
            actors.append(actor)
    embeddings, actors = np.array(embeddings), np.array(actors)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    similarity = embeddings @ embeddings.T
    same = (actors[:, None] == actors[None]) & ~np.eye(len(actors), dtype=bool)
    assert similarity[same].mean() > similarity[actors[:, None] != actors[None]].mean() + 0.1


def conversations(actors: list[int], encoder, detector, count: int = 4) -> list[tuple[list, list]]:
    """`count` conversations of `actors` taking 10 turns (seeds 0, 1, ...): each one's reference and turns found."""
    found = []
    for seed in range(count):
        audio, reference = conversation(actors, 10, np.random.default_rng(seed))
        found.append((reference, diarize(audio, speech_spans(audio, detector), encoder)))
    return found


@needs_ravdess
def test_a_man_and_a_woman_and_their_turns_are_found(encoder, detector):
    for reference, turns in conversations([21, 22], encoder, detector):
        assert len({speaker for *_, speaker in turns}) == 2
        assert 8 <= len(turns) <= 12, "about one utterance per turn"
        assert diarization_error_rate(reference, turns) <= 0.15
        assert turns[0][2] == 0 and turns == sorted(turns), "in time order, speakers named by first appearance"


@needs_ravdess
def test_three_speakers_are_at_least_two(encoder, detector):
    """Three actors: at least two voices told apart every time, all three only sometimes (issue 24's goal is not met:
    BENCHMARKS.md); the error rate well under the half that one voice for all would give."""
    found = conversations([21, 22, 23], encoder, detector)
    assert all(len({speaker for *_, speaker in turns}) >= 2 for _, turns in found)
    assert np.mean([diarization_error_rate(reference, turns) for reference, turns in found]) <= 0.3


@needs_ravdess
@pytest.mark.xfail(strict=True, reason="issue 24.5, not met: one actor in ten emotions taken for two or more voices")
def test_one_speaker_is_one_speaker(encoder, detector):
    for _, turns in conversations([24], encoder, detector):
        assert len({speaker for *_, speaker in turns}) == 1


@needs_ravdess
def test_the_number_of_speakers_can_be_given(encoder, detector):
    audio, _ = conversation([21, 22, 23], 10, np.random.default_rng(1))
    spans = speech_spans(audio, detector)
    for count in (1, 2, 3):
        turns = diarize(audio, spans, encoder, DiarizationOptions(num_speakers=count))
        assert len({speaker for *_, speaker in turns}) == count


def test_pyannotes_real_sample_and_the_maintained_error_rate(encoder, detector):
    packaged("pyannote.audio")
    metrics = installed("pyannote.metrics.diarization")
    from pyannote.core import Annotation, Segment

    audio, reference = pyannote_sample()
    turns = diarize(audio, speech_spans(audio, detector), encoder)
    assert len({speaker for *_, speaker in turns}) == 2
    ours = diarization_error_rate(reference, turns)
    assert ours <= 0.25

    def annotation(found):
        result = Annotation()
        for index, (start, end, speaker) in enumerate(found):
            result[Segment(start, end), index] = str(speaker)
        return result

    theirs = metrics.DiarizationErrorRate(collar=0.5)(annotation(reference), annotation(turns))  # 0.25 s each side
    assert ours == pytest.approx(theirs, abs=0.005)


def test_silence_has_no_speakers(encoder):
    assert diarize(np.zeros(16000 * 5, np.float32), [], encoder) == []


def test_windows_and_short_runs():
    options = DiarizationOptions(window_s=1.6, hop_s=0.8)
    assert window_spans([(0.0, 1.0)], options) == [(-0.3, 1.3)], "a short span: one window centred on it"
    assert window_spans([(0.0, 3.2)], options) == [(0.0, 1.6), (0.8, 2.4), (1.6, 3.2)]
    assert smoothed_runs([0, 0, 0, 1, 0, 0, 2, 2, 2, 2], shortest=2) == [(0, 6), (2, 4)]


@needs_ravdess
def test_analyze_names_the_speaker_of_each_utterance(demo_model, tmp_path):
    """`gia-mic analyze --speakers` on a recording of two actors taking turns: an utterance per turn, each named."""
    import soundfile as sf

    audio, reference = conversation([21, 22], 10, np.random.default_rng(0))
    sf.write(tmp_path / "talk.wav", audio, 16000)
    gia_mic = str(Path(sys.executable).with_name("gia-mic"))
    command = [gia_mic, "analyze", str(tmp_path / "talk.wav"), "--model", str(demo_model), "--no-transcribe"]
    named = ["--speaker-names", "Ann,Bob"]
    done = subprocess.run([*command, *named, "--output", str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[2/3] Telling speakers apart" in done.stderr and "Bob" in done.stdout
    with open(tmp_path / "out" / "timeline.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:3] == ["start", "end", "speaker"]
    turns = [(float(r["start"]), float(r["end"]), r["speaker"]) for r in rows]
    assert [speaker for *_, speaker in turns] == ["Ann", "Bob"] * 5, "named in order of first appearance"
    assert diarization_error_rate(reference, turns) <= 0.15
    timeline = json.loads((tmp_path / "out" / "timeline.json").read_text())
    assert [s["speaker"] for s in timeline["segments"]] == [speaker for *_, speaker in turns]
    summary = {own["speaker"]: own for own in timeline["speakers"]}
    for name in ("Ann", "Bob"):
        own = [r for r in rows if r["speaker"] == name]
        assert summary[name]["utterances"] == 5
        assert summary[name]["seconds"] == pytest.approx(sum(float(r["end"]) - float(r["start"]) for r in own), 1e-3)
        labels = [r["label"] for r in own]
        assert summary[name]["emotion"] == max(
            set(labels), key=lambda x: sum(float(r["end"]) - float(r["start"]) for r in own if r["label"] == x)
        )
        assert len(summary[name]["changes"]) == sum(a != b for a, b in zip(labels, labels[1:]))
        assert sum(summary[name]["shares"].values()) == pytest.approx(1.0, abs=1e-3)
        assert f"{name}  " in done.stdout and f"{summary[name]['utterances']} utterances" in done.stdout
    with open(tmp_path / "out" / "speakers.csv", newline="") as handle:
        assert [r["speaker"] for r in csv.DictReader(handle)] == ["Ann", "Bob"]
    plain = subprocess.run([*command, "--output", str(tmp_path / "plain")], capture_output=True, text=True)
    assert plain.returncode == 0 and "[1/2] Finding speech" in plain.stderr
    with open(tmp_path / "plain" / "timeline.csv", newline="") as handle:
        assert "speaker" not in next(csv.reader(handle)), "speakers only when asked"


def test_the_plot_has_one_lane_per_speaker_coloured_by_emotion():
    from matplotlib.colors import to_rgba

    from gia_mic.timeline import timeline_figure

    labels = ["neutral", "happy", "sad"]

    def segment(start, end, speaker, label):
        return {"start": start, "end": end, "speaker": speaker, "label": label, "scores": dict.fromkeys(labels, 0.3)}

    segments = [segment(0, 2, "Ann", "happy"), segment(2.5, 4, "Bob", "sad"), segment(4, 6, "Ann", "neutral")]
    speakers = [{"speaker": "Ann"}, {"speaker": "Bob"}]
    figure = timeline_figure({"duration": 6.0, "segments": segments, "speakers": speakers}, labels, "a talk")
    probabilities, lanes = figure.axes
    assert [tick.get_text() for tick in lanes.get_yticklabels()] == ["Bob", "Ann"], "the first speaker on top"
    blocks = {}
    for collection, name in zip(lanes.collections, ["Ann", "Bob"]):
        paths = collection.get_paths()
        blocks[name] = [(round(p.vertices[:, 0].min(), 3), round(p.vertices[:, 0].max(), 3)) for p in paths]
        colours = [tuple(colour) for colour in collection.get_facecolor()]
        line_colours = {line.get_label(): line.get_color() for line in probabilities.get_lines()}
        expected = [s["label"] for s in segments if s["speaker"] == name]
        assert colours == [to_rgba(line_colours[label]) for label in expected]
    assert blocks == {"Ann": [(0, 2), (4, 6)], "Bob": [(2.5, 4)]}
    single = timeline_figure({"duration": 6.0, "segments": segments}, labels, "a talk")
    assert len(single.axes) == 1, "no lanes without speakers"


def test_each_speakers_summary():
    labels = ["neutral", "happy", "sad"]
    segments = [
        {"start": 0.0, "end": 2.0, "speaker": "Ann", "label": "happy"},
        {"start": 2.0, "end": 3.0, "speaker": "Bob", "label": "neutral"},
        {"start": 3.0, "end": 4.0, "speaker": "Ann", "label": "happy"},
        {"start": 4.5, "end": 8.5, "speaker": "Ann", "label": "sad"},
        {"start": 9.0, "end": 9.5, "speaker": "Bob", "label": None},
    ]
    ann, bob = speaker_summary(segments, labels)
    assert ann == {
        "speaker": "Ann",
        "seconds": 7.0,
        "utterances": 3,
        "emotion": "sad",
        "shares": {"neutral": 0.0, "happy": pytest.approx(3 / 7, abs=1e-4), "sad": pytest.approx(4 / 7, abs=1e-4)},
        "changes": [{"time": 4.5, "from": "happy", "to": "sad"}],
    }
    assert bob["seconds"] == 1.5 and bob["utterances"] == 2 and bob["emotion"] == "neutral" and bob["changes"] == []
    assert bob["shares"]["neutral"] == 1.0, "shares of the time with an answer"


def test_what_speakers_takes():
    assert diarization_options(None) is None and diarization_options(False) is None
    assert diarization_options(True) == DiarizationOptions()
    assert diarization_options(3) == DiarizationOptions(num_speakers=3)
    assert diarization_options({"names": ("Ann",)}) == DiarizationOptions(names=("Ann",))
    for bad in (0, -1, "two", {"speakers": 2}, 1.5):
        with pytest.raises(ValueError, match="^`speakers` takes True, a number of speakers"):
            diarization_options(bad)


@needs_ravdess
def test_the_pipeline_from_the_model_folder_tells_speakers_apart(classifier, tmp_path):
    """`pipeline(...)(path, speakers=2)` through the model folder's own code (a copy of the speaker module in it)."""
    import soundfile as sf

    audio, reference = conversation([21, 22], 10, np.random.default_rng(0))
    sf.write(tmp_path / "talk.wav", audio, 16000)
    timeline = classifier(str(tmp_path / "talk.wav"), speakers=2, transcribe=False)
    turns = [(s["start"], s["end"], s["speaker"]) for s in timeline["segments"]]
    assert diarization_error_rate(reference, turns) <= 0.15
    assert [own["speaker"] for own in timeline["speakers"]] == ["SPEAKER_00", "SPEAKER_01"]
    assert type(classifier).__module__.startswith("transformers_modules"), "the folder's code, not this package's"
    plain = classifier(str(tmp_path / "talk.wav"), transcribe=False)
    assert "speakers" not in plain and all("speaker" not in s for s in plain["segments"])


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"hop_s": 0}, "window_s and hop_s must be positive"),
        ({"window_s": "long"}, "window_s must be a number"),
        ({"num_speakers": "2"}, "num_speakers must be a whole number"),
        ({"min_speakers": 3, "max_speakers": 2}, "min_speakers 3 > max_speakers 2"),
        ({"names": "Ann"}, "names takes a tuple of names"),
        ({"names": ("Ann", "Ann")}, "must differ from each other"),
        ({"names": ("SPEAKER_01",)}, "from SPEAKER_nn"),
        ({"names": ("Ann", "Bob", "Cy"), "num_speakers": 2}, "3 speaker names were given for 2 speakers"),
    ],
)
def test_bad_options_are_named(fields, message):
    with pytest.raises(ValueError, match=message):
        DiarizationOptions(**fields)


@needs_ravdess
def test_more_speakers_asked_for_than_windows_is_not_a_crash(encoder):
    audio, _ = conversation([21, 22], 2, np.random.default_rng(0))
    turns = diarize(audio, [(0.5, 2.9)], encoder, DiarizationOptions(num_speakers=3))
    assert 1 <= len({speaker for *_, speaker in turns}) <= 2, "as many as there are windows, not invented"


def test_a_recordings_windows_hold_only_what_is_still_to_come(tmp_path):
    """After the last window the decoding stops: ten minutes of silence after it are neither read nor held."""
    import tracemalloc

    import soundfile as sf

    sf.write(tmp_path / "long.wav", np.zeros(16000 * 600, np.float32), 16000)
    tracemalloc.start()
    windows = list(recording_windows(str(tmp_path / "long.wav"), [(1.0, 2.6), (2.0, 3.6)], 1.6))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [w.size for w in windows] == [25600, 25600]
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MiB held"
