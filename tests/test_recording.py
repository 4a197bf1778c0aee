"""
Recording analysis: the `multimodal-emotion-recognition` pipeline and `gia-mic analyze` on real recordings assembled
from RAVDESS speech and FER-2013 faces with known boundaries; segmentation rules; bad recordings.
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import recordings  # the benchmark's recordings of known content (benchmarks/ is on the path: conftest)
import soundfile as sf
import torch
from conftest import SHARED_DATA, run_isolated
from PIL import Image
from transformers import AutoModelForAudioClassification, AutoProcessor

from modeling_gia_mic import TASK
from modeling_gia_mic.recording_gia_mic import SegmentationOptions, cut_segments, probe, speech_segments


needs_data = pytest.mark.skipif(
    not (SHARED_DATA / "ravdess").is_dir() or not (SHARED_DATA / "fer2013").is_dir(),
    reason="needs RAVDESS and FER-2013 in ../shared/data",
)
STEP = 512 / 16000  # one voice-activity step


@pytest.fixture(scope="module")
def video_timeline(classifier, talk) -> dict:
    return classifier(str(talk["video"]))


def clip_alone(model_dir: Path, segment: dict, waveform: np.ndarray, picture: np.ndarray | None) -> np.ndarray:
    """The model on one segment's span alone, through the processor and a raw forward (no batching, no features)."""
    model = AutoModelForAudioClassification.from_pretrained(model_dir, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(model_dir, trust_remote_code=True)
    start, end = round(segment["start"] * 16000), round(segment["end"] * 16000)
    inputs = {"text": [segment["text"]], "audio": [waveform[start:end]], "sampling_rate": 16000}
    if picture is not None:
        inputs["images"] = [[np.repeat(picture[..., None], 3, axis=2)] * processor.num_frames]
    with torch.no_grad():
        return model(**processor(**inputs)).logits.softmax(-1)[0].numpy()


@needs_data
def test_segments_are_the_clips_and_each_label_is_the_clip_alone(video_timeline, talk, demo_model):
    segments, placed = video_timeline["segments"], talk["placed"]
    assert [len(segments), video_timeline["notes"]] == [len(placed), []]
    waveform, _ = sf.read(talk["audio"], dtype="float32")  # the same samples as the video's lossless track
    background = np.full((120, 160), 128, np.uint8)
    for segment, clip in zip(segments, placed):
        assert abs(segment["start"] - clip.start) <= 0.3 and abs(segment["end"] - clip.end) <= 0.3, (segment, clip)
        assert segment["text"] and set(segment["inputs"]) == {"text", "speech", "face"}
        alone = clip_alone(demo_model, segment, waveform, recordings.on_background(clip.face, background))
        np.testing.assert_allclose(list(segment["scores"].values()), alone, atol=1e-4)
        assert segment["label"] == list(segment["scores"])[int(alone.argmax())]
        assert len(segment["gates"]) == 6


@needs_data
def test_audio_file_has_no_face_and_the_same_speech(classifier, talk, video_timeline):
    timeline = classifier(str(talk["audio"]))
    assert [(s["start"], s["end"]) for s in timeline["segments"]] == [
        (s["start"], s["end"]) for s in video_timeline["segments"]
    ]
    assert all(set(s["inputs"]) == {"text", "speech"} for s in timeline["segments"])
    assert all(set(s["gates"]) == {"text->speech", "speech->text"} for s in timeline["segments"])
    waveform, _ = sf.read(talk["audio"], dtype="float32")
    spans = [(s["start"], s["end"]) for s in timeline["segments"]]
    for (start, end), media in zip(spans, cut_segments(probe(talk["audio"]), spans, num_frames=8)):
        np.testing.assert_array_equal(media.waveform, waveform[round(start * 16000) : round(end * 16000)])


@needs_data
def test_cli_writes_the_timeline_and_one_line_per_segment(talk, demo_model, tmp_path, video_timeline):
    output = tmp_path / "out"
    command = [Path(sys.executable).with_name("gia-mic"), "analyze", talk["video"], "--model", demo_model]
    done = subprocess.run([*map(str, command), "--output", str(output)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line[:1].isdigit()]
    assert len(lines) == len(talk["placed"]) and all('"' in line for line in lines)
    assert "[1/2] Finding speech" in done.stderr and "[2/2] Analysing segments" in done.stderr
    with (output / "timeline.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["label"] for row in rows] == [s["label"] for s in video_timeline["segments"]]
    assert {"face_label", "speech_label", "text_label", "p_happy", "gate_face->speech"} <= set(rows[0])
    saved = json.loads((output / "timeline.json").read_text())
    assert saved["segments"] == json.loads(json.dumps(video_timeline["segments"]))
    with Image.open(output / "timeline.png") as image:
        assert image.size[0] > 600
    # An existing output is not replaced unless asked; a folder the user owns never is.
    again = subprocess.run([*map(str, command), "--output", str(output)], capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--overwrite" in again.stderr
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    refused = subprocess.run(
        [*map(str, command), "--output", str(mine), "--overwrite"], capture_output=True, text=True
    )
    assert refused.returncode == 2 and (mine / "notes.txt").read_text() == "keep me"


@needs_data
def test_audio_only_csv_has_no_face_column(talk, demo_model, tmp_path):
    done = subprocess.run(
        [str(Path(sys.executable).with_name("gia-mic")), "analyze", str(talk["audio"]), "--model", str(demo_model)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    header = (tmp_path / "talk-emotions" / "timeline.csv").read_text().splitlines()[0]
    assert "speech_label" in header and "face" not in header


@needs_data
def test_video_without_audio_is_read_for_faces(classifier, talk, tmp_path):
    silent_film = tmp_path / "faces.mkv"
    placed = talk["placed"]
    spans = [(p.start - 0.75, p.end + 0.75) for p in placed]
    recordings.write_recording(silent_film, None, [p.face for p in placed], spans, duration=placed[-1].end + 1)
    timeline = classifier(str(silent_film))
    assert "no audio track: faces only, in 5-second windows" in timeline["notes"][0]
    assert [s["end"] - s["start"] for s in timeline["segments"][:-1]] == [5.0] * (len(timeline["segments"]) - 1)
    assert all(set(s["inputs"]) <= {"face"} and s["text"] is None for s in timeline["segments"])


def test_no_speech_gives_an_empty_timeline_and_says_so(classifier, tmp_path):
    noise = tmp_path / "fan.wav"
    rng = np.random.default_rng(0)
    sf.write(noise, (0.01 * rng.standard_normal(16000 * 6)).astype(np.float32), 16000)
    timeline = classifier(str(noise))
    assert timeline["segments"] == [] and timeline["notes"] == [
        "No speech was found in fan.wav: the timeline is empty."
    ]


def test_bad_recordings_are_clear_errors(classifier, tmp_path, demo_model):
    (tmp_path / "notes.mp4").write_text("not a video")
    (tmp_path / "captions.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nHello there\n\n")  # subtitles only
    for path, message in [
        (tmp_path / "missing.wav", "missing.wav: no such file"),
        (tmp_path / "notes.mp4", "notes.mp4: not an audio or video file"),
        (tmp_path / "captions.srt", "captions.srt has neither an audio track nor pictures"),
    ]:
        with pytest.raises(ValueError, match=message):  # a RecordingError of the model folder's own code
            classifier(str(path))
        done = subprocess.run(
            [str(Path(sys.executable).with_name("gia-mic")), "analyze", str(path), "--model", str(demo_model)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 2 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
        assert str(tmp_path) not in done.stderr  # the file's name, not the folder it sits in


def test_length_limit_is_checked_before_decoding(classifier, tmp_path):
    long = tmp_path / "two-hours.flac"
    with sf.SoundFile(long, "w", 8000, 1, "PCM_16") as handle:  # silence compresses to almost nothing
        block = np.zeros(8000 * 600, np.int16)
        for _ in range(12):
            handle.write(block)
    with pytest.raises(ValueError, match=r"two-hours.flac is 120 min 0 s long; at most 10 min 0 s"):
        classifier(str(long), max_seconds=600)


# --- segmentation rules, on made-up speech probabilities ---------------------------------------------------------


def probabilities(*runs: tuple[float, float]) -> np.ndarray:
    """Per-step speech probabilities: (seconds, probability) runs one after another."""
    return np.concatenate([np.full(round(seconds / STEP), p, np.float32) for seconds, p in runs])


def test_pauses_inside_an_utterance_and_bursts_of_noise():
    spans = speech_segments(probabilities((1, 0), (1, 0.9), (0.3, 0.1), (1, 0.9), (2, 0), (0.1, 0.9), (2, 0)), 8.4)
    assert len(spans) == 1  # the 0.3-s pause stays inside; the 0.1-s burst is not speech
    assert spans[0][0] == pytest.approx(0.9, abs=0.1) and spans[0][1] == pytest.approx(3.4, abs=0.1)  # padded 0.1 s


def test_short_utterances_join_a_close_neighbour_and_long_ones_are_split():
    short_pair = speech_segments(probabilities((1, 0), (2, 0.9), (0.8, 0), (0.5, 0.9), (3, 0)), 7.3)
    assert len(short_pair) == 1  # 0.5 s of speech 0.8 s after the last: one segment
    far = speech_segments(probabilities((1, 0), (2, 0.9), (3, 0), (0.5, 0.9), (3, 0)), 9.5)
    assert len(far) == 2  # too far apart to join: the short one is kept on its own, not dropped
    long_pair = speech_segments(probabilities((1, 0), (2, 0.9), (0.8, 0), (2, 0.9), (1, 0)), 6.8)
    assert len(long_pair) == 2  # close, but neither is short: two utterances
    options = SegmentationOptions()
    long = speech_segments(probabilities((1, 0), (40, 0.9), (1, 0)), 42.0, options)
    lengths = [end - start for start, end in long]
    assert len(long) == 3 and max(lengths) <= options.max_segment_s and max(lengths) - min(lengths) < 0.01
    assert all(a[1] == b[0] for a, b in zip(long, long[1:]))


def test_padding_never_crosses_half_the_pause_nor_the_recording():
    wide = SegmentationOptions(speech_pad_s=0.5)  # more than half of the 0.6-s pause
    spans = speech_segments(probabilities((0.05, 0), (2, 0.9), (0.6, 0), (2, 0.9)), 4.65, wide)
    (first_start, first_end), (second_start, second_end) = spans
    assert first_end == second_start == pytest.approx(0.05 + 2 + 0.3, abs=2 * STEP)  # they meet half way
    assert first_start == 0.0 and second_end == pytest.approx(4.65, abs=STEP)


def test_pipeline_loads_with_only_torch_and_transformers(demo_model, clean_media_site, tmp_path, talk, classifier):
    """The model folder's own code in a process with torch, transformers, PyAV and OpenCV only."""
    face = tmp_path / "face.png"
    Image.fromarray(talk["placed"][1].face).save(face)
    sample = {"text": "What a wonderful surprise!", "audio": str(talk["audio"]), "image": str(face)}
    script = f"""
        import json, sys
        from transformers import pipeline
        classifier = pipeline("{TASK}", model={str(demo_model)!r}, trust_remote_code=True)
        single = classifier({sample!r})
        timeline = classifier({str(talk["video"])!r})
        assert "gia_mic" not in sys.modules and "modeling_gia_mic" not in sys.modules
        print(json.dumps({{"single": single, "timeline": timeline}}))
    """
    done = run_isolated(script, clean_media_site, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    expected_single = classifier(sample)
    assert [r["label"] for r in result["single"]] == [r["label"] for r in expected_single]
    np.testing.assert_allclose(
        [r["score"] for r in result["single"]], [r["score"] for r in expected_single], atol=1e-5
    )
    expected = classifier(str(talk["video"]))["segments"]
    assert [s["label"] for s in result["timeline"]["segments"]] == [s["label"] for s in expected]
    assert [s["text"] for s in result["timeline"]["segments"]] == [s["text"] for s in expected]


# --- the pipeline on one sample ----------------------------------------------------------------------------------


def test_one_sample_of_any_inputs_gives_ranked_labels(classifier, talk):
    waveform, rate = sf.read(talk["audio"], dtype="float32")
    face = talk["placed"][1].face
    for sample in [
        {"text": "I can't believe you did this to me!"},
        {"audio": waveform[16000:48000], "sampling_rate": rate},
        {"audio": str(talk["audio"]), "image": np.repeat(face[..., None], 3, axis=2)},
        {"video": str(talk["video"])},
    ]:
        ranked = classifier(sample)
        scores = [r["score"] for r in ranked]
        assert sorted(r["label"] for r in ranked) == sorted(classifier.labels) and scores == sorted(scores)[::-1]
        assert sum(scores) == pytest.approx(1.0, abs=1e-5)
    assert len(classifier({"text": "fine"}, top_k=2)) == 2


def test_lists_generators_and_datasets_in_batches_give_what_each_item_gives_alone(classifier, talk):
    """transformers' pipeline contract: any iterable of inputs, `batch_size` at a time, one result per item."""
    from datasets import Dataset
    from transformers.pipelines.pt_utils import KeyDataset

    waveform, rate = sf.read(talk["audio"], dtype="float32")
    face = np.repeat(talk["placed"][1].face[..., None], 3, axis=2)
    items = [
        {"text": "I can't believe you did this to me!"},
        {"audio": waveform[16000:48000], "sampling_rate": rate},
        {"text": "What a lovely morning.", "image": face},
        {"audio": waveform[60000:90000], "sampling_rate": rate, "image": face},
        {"text": "Leave me alone."},
    ]
    alone = [classifier(item) for item in items]

    def same(results: list) -> None:
        assert len(results) == len(items)
        for result, expected in zip(results, alone):
            assert [r["label"] for r in result] == [r["label"] for r in expected]
            np.testing.assert_allclose([r["score"] for r in result], [r["score"] for r in expected], atol=1e-4)

    same(classifier(items, batch_size=3))
    same(list(classifier((item for item in items), batch_size=2)))
    texts = Dataset.from_dict({"inputs": [{"text": "Leave me alone."}] * 3, "id": [1, 2, 3]})
    for result in classifier(KeyDataset(texts, "inputs"), batch_size=2):
        assert [r["label"] for r in result] == [r["label"] for r in alone[-1]]
    timeline, ranked = classifier([str(talk["audio"]), items[0]], batch_size=2)
    assert len(timeline["segments"]) == 4 and ranked[0]["label"] == alone[0][0]["label"]


def test_an_explanation_is_the_answer_without_each_input(classifier, talk):
    """`explain=True`: each contribution is the top label's probability minus the pipeline's answer without it."""
    waveform, rate = sf.read(talk["audio"], dtype="float32")
    face = np.repeat(talk["placed"][1].face[..., None], 3, axis=2)
    sample = {"text": "You never listen to me.", "audio": waveform[16000:48000], "sampling_rate": rate, "image": face}
    explained = classifier(sample, explain=True)
    assert explained["text"] == sample["text"] and list(explained["inputs"]) == ["text", "speech", "face"]
    assert len(explained["gates"]) == 6 and all(0.0 <= gate <= 1.0 for gate in explained["gates"].values())
    top = explained["label"]
    assert explained["scores"][top] == explained["score"] == max(explained["scores"].values())
    keys = {"text": ("text",), "speech": ("audio", "sampling_rate"), "face": ("image",)}
    for name, contribution in explained["contributions"].items():
        rest = {key: value for key, value in sample.items() if key not in keys[name]}
        without = {r["label"]: r["score"] for r in classifier(rest, transcribe=False)}
        assert contribution == pytest.approx(explained["score"] - without[top], abs=1e-5), name
        alone = classifier({key: sample[key] for key in keys[name]}, transcribe=False)[0]
        assert explained["inputs"][name] == {"label": alone["label"], "score": pytest.approx(alone["score"], abs=1e-5)}
    one = classifier({"text": sample["text"]}, explain=True)
    assert one["contributions"] == {"text": pytest.approx(one["score"] - 1 / len(classifier.labels), abs=1e-6)}
    assert one["gates"] == {}


def test_calls_print_no_warnings(classifier, talk, capfd):
    """Speech transcribed on every call (one item, a batch): generation's own notices are not the user's business."""
    waveform, rate = sf.read(talk["audio"], dtype="float32")
    speech = {"audio": waveform[16000:48000], "sampling_rate": rate}
    capfd.readouterr()
    for _ in range(2):
        classifier(speech)
    classifier([speech, speech], batch_size=2)
    assert capfd.readouterr().err == ""


def test_one_sample_bad_inputs_are_clear(classifier, tmp_path):
    Image.new("RGB", (200, 200), (90, 120, 200)).save(tmp_path / "sky.png")
    with pytest.raises(ValueError, match="No face was found"):
        classifier({"image": str(tmp_path / "sky.png")})
    with pytest.raises(ValueError, match=r"Unknown inputs \['speech'\]"):
        classifier({"speech": "hello"})
    with pytest.raises(ValueError, match="either as an `image` or as a `video`"):
        classifier({"image": str(tmp_path / "sky.png"), "video": "clip.mp4"})
    with pytest.raises(ValueError, match="sampling_rate"):
        classifier({"audio": np.zeros(1600, np.float32)})


def test_each_target_time_gets_the_picture_on_screen_then(tmp_path):
    """Frame k of a 10-frames/s video shows grey level 20 k: the picture at time t is frame floor(10 t)."""
    path = tmp_path / "counter.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "gray"
        for index in range(12):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32), 20 * index, np.uint8), format="gray")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    (segment,) = cut_segments(probe(path), [(0.0, 1.0)], num_frames=4, audio=False)
    # targets 0.125, 0.375, 0.625, 0.875 s
    assert [int(frame[0, 0, 0]) for frame in segment.frames] == [20, 60, 120, 160]


def test_an_answer_under_the_models_threshold_is_not_sure(classifier, talk):
    """`uncertain_below` from the config marks the answer, its explanation and a recording's segments; none: never."""
    config, sentence = classifier.model.config, {"text": "The meeting starts at ten tomorrow."}
    saved = config.uncertain_below
    try:
        answer = classifier(sentence)[0]
        config.uncertain_below = answer["score"] + 1e-3
        assert classifier(sentence)[0]["uncertain"] is True
        assert classifier(sentence, explain=True)["uncertain"] is True
        timeline = classifier(str(talk["audio"]), transcribe=False)
        assert all(s["uncertain"] == (s["score"] < config.uncertain_below) for s in timeline["segments"])
        config.uncertain_below = answer["score"] - 1e-3
        assert classifier(sentence)[0]["uncertain"] is False
        config.uncertain_below = None
        assert (
            classifier(sentence)[0]["uncertain"] is False and classifier(sentence, explain=True)["uncertain"] is False
        )
    finally:
        config.uncertain_below = saved


@needs_data
def test_transcribed_words_are_used_only_where_their_own_answer_is_sure(classifier):
    """
    A real RAVDESS clip, transcribed: with `uncertain_below` above the words' own top probability they are left out
    (the answer is the voice's alone, the note says why, `text` keeps the words); under it they are used; a typed
    text is used whatever its confidence.
    """
    clip = {"audio": str(SHARED_DATA / "ravdess" / "Actor_01" / "03-01-05-01-01-01-01.flac")}
    config, saved = classifier.model.config, classifier.model.config.uncertain_below
    try:
        config.uncertain_below = None
        heard = classifier(clip, explain=True)
        words = heard["text"]
        assert "kids" in words.lower() and "text" in heard["inputs"]
        own = classifier({"text": words})[0]["score"]
        voice = classifier(clip, transcribe=False, explain=True)
        config.uncertain_below = own + 1e-3
        left_out = classifier(clip, explain=True)
        assert left_out["text"] == words and set(left_out["inputs"]) == {"speech"}
        assert left_out["scores"] == pytest.approx(voice["scores"], abs=1e-6), "the voice alone decided"
        assert any("say nothing sure about the emotion" in note for note in left_out["notes"])
        typed = classifier({**clip, "text": words}, explain=True)
        assert set(typed["inputs"]) == {"text", "speech"}, "words the user gives are always used"
        config.uncertain_below = own - 1e-3
        used = classifier(clip, explain=True)
        assert set(used["inputs"]) == {"text", "speech"} and used["scores"] == pytest.approx(heard["scores"], abs=1e-6)
    finally:
        config.uncertain_below = saved
