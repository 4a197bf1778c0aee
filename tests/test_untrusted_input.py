"""
Hostile or careless input (issue 27.4-9): memory bounded by design, one request's bad input failing only itself,
files cut short said so, weights that do not fit refused, and every problem one clear line (`error: ...`, exit 2).
"""

import importlib.util
import pickle
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import recordings  # benchmarks/: real recordings of known content, and the peak memory of a child process
import soundfile as sf
import torch
from conftest import SHARED_DATA, assert_one_line_error, feature_config, installed, mmsa_split
from PIL import Image
from safetensors.torch import save_file

from dataset_scripts import mosi
from dataset_scripts.common import BuildError
from modeling_gia_mic import GiaMicForEmotionRecognition


ROOT = Path(__file__).resolve().parents[1]
GIA_MIC = str(Path(sys.executable).with_name("gia-mic"))
needs_data = pytest.mark.skipif(
    not (SHARED_DATA / "ravdess").is_dir() or not (SHARED_DATA / "fer2013").is_dir(),
    reason="needs RAVDESS and FER-2013 in ../shared/data",
)


def gia_mic(*args) -> subprocess.CompletedProcess:
    return subprocess.run([GIA_MIC, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=600)


# --- memory bounded by design --------------------------------------------------------------------------------------

CROP = """
import resource
import sys
import numpy as np
from PIL import Image
from transformers import pipeline

def status_mib(field):  # VmHWM: the high-water mark of resident memory; VmSize: the address space in use
    status = open("/proc/self/status").read()
    return int(next(line for line in status.splitlines() if line.startswith(field)).split()[1]) / 1024

def peak_mib():
    return status_mib("VmHWM")

classifier = pipeline("multimodal-emotion-recognition", model=sys.argv[1], trust_remote_code=True)
classifier({"text": "warm-up"})
image = sys.argv[2]
if sys.argv[3] == "array":  # already in memory, as a caller of the pipeline may hold it
    image = np.asarray(Image.open(image).convert("RGB"))
open("/proc/self/clear_refs", "w").write("5")  # the high-water mark starts again from here
loaded = peak_mib()
cap = int((status_mib("VmSize") + 1024) * 2**20)  # a memory cap: 1 GiB more address space than is in use now
resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
try:
    print(classifier({"image": image})[0]["label"])
except ValueError as error:
    print("refused:", error)
print("grew_mib", peak_mib() - loaded)
"""


def run_crop(demo_model: Path, image: Path, given_as: str = "path") -> tuple[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CROP, str(demo_model), str(image), given_as],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer, grew = done.stdout.strip().splitlines()[-2:]
    return answer, float(grew.split()[1])


def test_a_huge_image_is_refused_from_its_header_and_a_large_one_is_cropped_in_bounded_memory(demo_model, tmp_path):
    """
    A 9000 x 9000 PNG (81 MP, 0.2 MB on disk) is refused before decoding. A 7000 x 7000 picture (49 MP) with a face
    costs what the same picture at 1280 px costs (the face detector's own ~130 MB each time), plus its decoding
    when given as a file (PIL holds RGB as 4 bytes a pixel: 196 MB at most, by the pixel limit): it is shrunk before
    detection and only the face is copied. The whole-frame padding of before took 1.8 GB more. Each runs in a child
    process capped at 1 GiB of address space beyond what the loaded model uses.
    """
    huge = tmp_path / "huge.png"
    Image.new("L", (9000, 9000), 128).save(huge, optimize=True)
    answer, grew = run_crop(demo_model, huge)
    assert (
        answer
        == "refused: Image huge.png is 9000x9000 pixels (81 megapixels); at most 50 megapixels are taken. "
        + ("Scale it down first.")
    )
    assert grew < 50, f"memory grew by {grew:.0f} MiB for an image that is never decoded"
    large = tmp_path / "large.png"
    picture = Image.new("RGB", (7000, 7000), (90, 120, 150))
    face = Image.open(astronaut()).convert("RGB").crop((150, 10, 290, 170)).resize((2100, 2400))
    picture.paste(face, (1000, 3500))  # the astronaut's face, large, low in a 49-megapixel picture
    picture.save(large)
    picture.resize((1280, 1280)).save(tmp_path / "small.png")
    grown = {}
    for name, given_as in (("small", "array"), ("large", "array"), ("large", "path")):
        answer, grown[name, given_as] = run_crop(demo_model, tmp_path / f"{name}.png", given_as)
        assert not answer.startswith("refused"), answer
    assert grown["large", "array"] - grown["small", "array"] < 50, grown
    assert grown["large", "path"] - grown["small", "array"] < 250, grown


def astronaut() -> Path:
    """scikit-image's astronaut photograph, read from the package's files (its import needs more than `make test`
    installs for it)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None:
        installed("skimage")  # a clear skip outside CI, a failure in CI
    return Path(spec.submodule_search_locations[0]) / "data" / "astronaut.png"


@needs_data
def test_a_1080p_video_is_analysed_in_bounded_memory(demo_model, tmp_path):
    """Frames are shrunk as they are decoded, faces cut from their box as each utterance arrives: nine utterances of
    a 1080p video cost what they cost in a small one, within 100 MiB (measured: +30 MiB; 3.4 GB more before)."""
    peaks = {}
    for name, size in (("small", (160, 120)), ("1080p", (1920, 1080))):
        video = tmp_path / f"{name}.mkv"
        placed = recordings.known_recording(video, count=9, size=size)
        command = [GIA_MIC, "analyze", str(video), "--model", str(demo_model), "--output", str(tmp_path / name)]
        peaks[name], _ = recordings.peak_memory_of(command)
        assert len(placed) == 9
    assert peaks["1080p"] - peaks["small"] < 100, peaks


# --- one request's bad input fails only itself ---------------------------------------------------------------------


def test_a_failing_batch_is_rerun_item_by_item(monkeypatch):
    sys.path.insert(0, str(ROOT / "spaces_demo"))
    import app

    def double(items):
        if any(item < 0 for item in items):
            raise ValueError("negative")
        return [2 * item for item in items]

    queue = app.BatchingQueue(double, max_batch=4, wait_s=0.5)
    results: dict[int, object] = {}

    def call(item):
        try:
            results[item] = queue(item)
        except ValueError as error:
            results[item] = str(error)

    threads = [threading.Thread(target=call, args=(item,)) for item in (1, -1, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {1: 2, -1: "negative", 3: 6}


def test_non_finite_audio_is_refused_before_any_model_runs(classifier, tmp_path, monkeypatch):
    calls = []
    recognizer = classifier.speech_recognizer
    monkeypatch.setattr(recognizer, "transcribe", lambda waveforms: calls.append(waveforms) or [])
    monkeypatch.setattr(classifier.model, "forward", lambda **kwargs: calls.append(kwargs))
    waveform = np.zeros(16000, np.float32)
    waveform[100] = np.inf
    path = tmp_path / "click.wav"
    sf.write(path, waveform, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match="The audio of click.wav contains NaN or infinite values"):
        classifier({"audio": str(path)})
    with pytest.raises(ValueError, match="`audio` contains NaN or infinite values"):
        classifier({"audio": waveform, "sampling_rate": 16000})
    recording = tmp_path / "long-click.wav"
    sf.write(recording, np.concatenate([np.zeros(16000 * 3, np.float32), waveform]), 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"long-click.wav: the audio holds NaN or infinite samples at \d"):
        classifier(str(recording))
    assert calls == []


# --- clear errors in the pipeline ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "options", "message"),
    [
        ({"text": 123}, {}, "`text` must be a string; got int"),
        ({"audio": np.zeros((2, 16000), np.float32), "sampling_rate": 16000}, {}, "must be a mono 1-D waveform"),
        ({"audio": np.zeros(1, np.float32) + 0.1, "sampling_rate": 16000}, {}, "shorter than 0.1 s"),
        ({"audio": np.zeros(16000, np.float32), "sampling_rate": 1}, {}, "16000.0 s long (16000 samples at 1 Hz)"),
        ({"text": "fine"}, {"top_k": -1}, "`top_k` must be a whole number of labels, 1 or more; got -1"),
        ({"text": "fine"}, {"top_k": 0}, "got 0"),
        ({"text": "fine"}, {"max_seconds": float("nan")}, "`max_seconds` must be a positive number of seconds"),
        ({"text": "fine"}, {"max_seconds": True}, "`max_seconds` must be a positive number of seconds; got True"),
        ({"text": "fine"}, {"transcribe": "no"}, "`transcribe` takes True or False; got 'no'"),
        ({"text": "fine", "sampling_rate": -5}, {}, "`sampling_rate` goes with `audio` given as an array"),
        ({"video": 5}, {}, "`video` must be the path of a video file; got int"),
        ({"audio": [[0.1, 0.2], [0.3]], "sampling_rate": 16000}, {}, "not an array of samples (lists of unequal"),
        ({"audio": np.full(16000, 1e30, np.float32), "sampling_rate": 16000}, {}, "has samples up to 1e+30"),
        ({"image": np.full((48, 48), "x")}, {}, "Image of sample 0 holds <U1 values; expected pixel numbers"),
    ],
    ids=[
        "text-number",
        "2d-audio",
        "one-sample",
        "rate-1",
        "top-k-negative",
        "top-k-zero",
        "max-seconds-nan",
        "max-seconds-bool",
        "transcribe-string",
        "rate-without-audio",
        "video-number",
        "ragged-audio",
        "huge-amplitude",
        "string-image",
    ],
)
def test_bad_pipeline_input_is_named(classifier, inputs, options, message):
    with pytest.raises(ValueError) as error:
        classifier(inputs, **options)
    assert message in str(error.value)


def test_a_folder_or_a_link_loop_as_the_recording_says_what_it_is(classifier, tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "interviews").mkdir()
    with pytest.raises(ValueError, match="interviews: a folder, not a file"):
        classifier(str(tmp_path / "interviews"))
    with pytest.raises(ValueError, match="loop: a link that leads nowhere"):
        classifier(str(tmp_path / "loop"))


def test_pictures_over_the_limit_are_refused_from_the_header(classifier, tmp_path):
    """A 9000 x 9000 picture given as a recording (PyAV reads images as one-frame videos), or a 20000 x 10000 one
    (over PIL's own limit) given as an image: refused with their size, nothing decoded."""
    picture = tmp_path / "poster.png"
    Image.new("L", (9000, 9000), 200).save(picture)
    with pytest.raises(ValueError, match="A picture of poster.png is 9000x9000 pixels"):
        classifier(str(picture))
    Image.new("L", (20000, 10000), 200).save(picture)
    with pytest.raises(ValueError, match="Image poster.png is over 179 megapixels; at most 50 megapixels are taken"):
        classifier({"image": str(picture)})


@needs_data
@pytest.mark.parametrize("suffix", [".mkv", ".mp3", ".flac"])
def test_a_recording_cut_short_says_so(classifier, talk, tmp_path, suffix):
    whole = tmp_path / f"talk{suffix}"
    if suffix == ".mkv":
        shutil.copy(talk["video"], whole)
    elif suffix == ".flac":
        sf.write(whole, sf.read(talk["audio"], dtype="int16")[0], 16000, subtype="PCM_16")
    else:
        waveform, rate = sf.read(talk["audio"], dtype="int16")
        with av.open(str(whole), "w") as container:
            stream = container.add_stream("mp3", rate=rate, layout="mono")
            for start in range(0, waveform.size, 1152):
                frame = av.AudioFrame.from_ndarray(waveform[None, start : start + 1152], format="s16", layout="mono")
                frame.sample_rate, frame.pts = rate, start
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
    cut = tmp_path / f"cut{suffix}"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    timeline = classifier(str(cut))
    stopped = ("looks cut short", "cannot be decoded past")
    assert any(reason in note for note in timeline["notes"] for reason in stopped), timeline["notes"]
    assert 0 < len(timeline["segments"]) < len(talk["placed"])


# --- clear errors on the command line ------------------------------------------------------------------------------


@pytest.fixture
def head(tmp_path) -> Path:
    GiaMicForEmotionRecognition(feature_config(("text",))).save_pretrained(tmp_path / "head")
    return tmp_path / "head"


def test_weights_that_do_not_fit_are_refused(head, tmp_path):
    foreign = Path(shutil.copytree(head, tmp_path / "foreign"))
    save_file({"model.encoder.conv1.weight": torch.zeros(4, 80, 3)}, foreign / "model.safetensors")  # Whisper's
    assert_one_line_error(
        gia_mic("export", "--model", foreign, "--output", tmp_path / "out"),
        "do not fit its gia_mic model",
        "weights are not in the file",
    )
    truncated = Path(shutil.copytree(head, tmp_path / "truncated"))
    data = (head / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert_one_line_error(gia_mic("export", "--model", truncated, "--output", tmp_path / "out"), "cannot be read")
    assert_one_line_error(
        gia_mic("export", "--model", tmp_path / "no-such-model", "--output", tmp_path / "out"),
        "no-such-model: no such model folder",
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--audio-seconds", "inf", "--audio-seconds must be from 0.1 to 3600 seconds"),
        ("--audio-seconds", "-1", "--audio-seconds must be from 0.1 to 3600 seconds"),
        ("--audio-seconds", "0.001", "--audio-seconds must be from 0.1 to 3600 seconds"),
        ("--text-tokens", "0", "--text-tokens must be a whole number from 1 to 65536"),
        ("--text-tokens", "-5", "--text-tokens must be a whole number from 1 to 65536"),
        ("--text-tokens", "abc", "gia-mic export: argument --text-tokens: invalid int value: 'abc'"),
        ("--video-frames", "0", "--video-frames must be a whole number from 1 to 256"),
        ("--video-frames", "100000", "--video-frames must be a whole number from 1 to 256"),
    ],
)
def test_export_lengths_are_checked(head, tmp_path, option, value, message):
    assert_one_line_error(gia_mic("export", "--model", head, "--output", tmp_path / "out", option, value), message)


def mosi_pickle(tmp_path: Path, change) -> Path:
    rng = np.random.default_rng(0)
    data = {
        "train": mmsa_split(["vidA$_$1", "vidA$_$2"], [1.2, -0.4], rng),
        "valid": mmsa_split(["vidB$_$1"], [0.0], rng),
        "test": mmsa_split(["vidC$_$5"], [-3.0], rng),
    }
    change(data)
    path = tmp_path / "corpus" / "Processed" / "unaligned_50.pkl"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(data))
    return path


def nan_mask(data):
    data["train"]["text_bert"][1, 1, 3] = np.nan


def negative_length(data):
    data["valid"]["audio_lengths"] = [-4]


def string_features(data):
    data["test"]["vision"] = np.full((1, 500, 20), "x")


def string_split(data):
    data["valid"] = "valid"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (nan_mask, "split 'train', id 'vidA$_$2': text_bert's attention mask (row 1) holds values other than 0 and 1"),
        (negative_length, "split 'valid', id 'vidB$_$1': audio_lengths is not a whole number from 0 to 375"),
        (string_features, "split 'test': key 'vision' holds <U1 values; expected numbers"),
        (string_split, "split 'valid' is a str; expected a dict of arrays"),
    ],
    ids=["nan-text-bert", "negative-lengths", "string-features", "string-split"],
)
def test_a_bad_mmsa_pickle_is_named_never_cut_to_one_step(tmp_path, change, message):
    path = mosi_pickle(tmp_path, change)
    with pytest.raises(BuildError) as error:
        mosi.main(
            [
                "--source",
                "mmsa-pickle",
                "--root",
                str(path.parents[1]),
                "--output",
                str(tmp_path / "o"),
                "--allow-pickle",
            ]
        )
    assert message in str(error.value)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("damage", ["not-a-pickle", "truncated"])
def test_an_unreadable_pickle_is_one_line(tmp_path, damage):
    path = mosi_pickle(tmp_path, lambda data: None)
    data = path.read_bytes()
    path.write_bytes(b"name,label\nx,1\n" if damage == "not-a-pickle" else data[: len(data) // 3])
    result = subprocess.run(
        [sys.executable, "-m", "dataset_scripts.mosi", "--source", "mmsa-pickle", "--root", str(path.parents[1])]
        + ["--output", str(tmp_path / "o"), "--allow-pickle"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    *before, last = result.stderr.strip().splitlines()
    assert last.startswith("error: ") and "unaligned_50.pkl: not a pickle that can be read" in last
    assert all("Unpickling" in line or "load_pickle" in line for line in before), "only the opt-in's warning"


def test_silence_between_utterances_is_not_held():
    """Two utterances ten minutes apart: the reader holds the audio from the next utterance's start on, never the
    silence before it (memory grew by 460 MB per 2 h of pause before)."""
    from collections import deque

    from modeling_gia_mic.recording_gia_mic import SAMPLING_RATE, SegmentMedia, StreamCutter

    spans = [(1.0, 2.0), (601.0, 602.5)]
    cutter = StreamCutter(deque(SegmentMedia(start, end) for start, end in spans), rate=SAMPLING_RATE, video=False)
    held, handed = [], []
    second = np.ones(SAMPLING_RATE, np.float32)
    for index in range(605):
        handed.extend(cutter.take(float(index), second * index))
        held.append(sum(samples.size for _, samples in cutter.chunks) / SAMPLING_RATE)
    handed.extend(cutter.finish())
    assert [(s.start, s.end, s.waveform.size) for s in handed] == [(1.0, 2.0, 16000), (601.0, 602.5, 24000)]
    assert handed[1].waveform[0] == 601 and handed[1].waveform[-1] == 602, "the right seconds"
    assert max(held) <= 3.0, f"held up to {max(held):.0f} s of audio"


def test_a_marker_that_is_not_ours_is_refused_in_one_line(tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "timeline.csv").write_text("start,end\n")
    for files in ("[]", "null", '{"timeline.csv": 10'):
        (output / ".gia-mic-output.json").write_text('{"command": "gia-mic analyze", "files": ' + files + "}")
        result = gia_mic("analyze", tmp_path / "a.wav", "--model", tmp_path / "m", "--output", output, "--overwrite")
        assert_one_line_error(result, "was not written by gia-mic")
    assert (output / "timeline.csv").read_text() == "start,end\n"


def test_extract_features_batch_size_is_checked_before_any_work(tmp_path):
    result = gia_mic("extract-features", "--dataset", tmp_path, "--output", tmp_path / "o", "--text_encoder", "x")
    assert result.returncode == 2  # the dataset folder is not a dataset: said before any encoder loads
    for value in ("0", "-1"):
        result = gia_mic(
            "extract-features",
            "--dataset",
            tmp_path,
            "--output",
            tmp_path / "o",
            "--text_encoder",
            "x",
            "--batch_size",
            value,
        )
        assert_one_line_error(result, f"--batch_size/--batch-size: must be a whole number, 1 or more; got '{value}'")


def test_ravdess_test_actors_must_exist_and_leave_some_to_train_on(tmp_path):
    from dataset_scripts import ravdess
    from dataset_scripts.common import BuildReport

    for actor in (1, 2):
        folder = tmp_path / f"Actor_{actor:02d}"
        folder.mkdir()
        sf.write(folder / f"03-01-05-02-01-01-{actor:02d}.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(BuildError, match="--test-actors 99: no such actor in the release .it has actors 1, 2."):
        ravdess.build(tmp_path, BuildReport(), tmp_path / "cache", (2, 99))
    with pytest.raises(BuildError, match="names every actor of the release .2.: none is left to train on"):
        ravdess.build(tmp_path, BuildReport(), tmp_path / "cache", (1, 2))
    assert ravdess.build(tmp_path, BuildReport(), tmp_path / "cache", (2,))["test"].num_rows == 1


def test_a_dataset_audio_cell_is_a_path_or_an_audio_cell_else_it_is_named(tmp_path):
    from gia_mic.preparation import audio_of

    clip = tmp_path / "clip.wav"
    sf.write(clip, 0.1 * np.sin(np.arange(8000) / 5).astype(np.float32), 16000)
    by_path, by_cell = (
        audio_of({"id": "a", "audio": str(clip)}, 0),
        audio_of({"id": "a", "audio": {"path": str(clip)}}, 0),
    )
    np.testing.assert_array_equal(by_path, by_cell)
    with pytest.raises(ValueError, match=r"^The audio of b is a int: expected a file's path or an Audio"):
        audio_of({"id": "b", "audio": 3}, 0)
    with pytest.raises(ValueError, match="The audio of c has neither bytes nor a path"):
        audio_of({"id": "c", "audio": None}, 0)
