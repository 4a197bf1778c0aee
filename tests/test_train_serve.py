"""
Train = serve: an item reaches the model as the same tensors whether training reads it from a dataset built by
`dataset_scripts` or the pipeline serves it from the user's files, because both go through the processor saved with
the model and the one audio reader.
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SHARED_DATA, assert_one_line_error
from PIL import Image

from dataset_scripts.common import AUDIO_STRUCT, audio_file_16k, image_file
from gia_mic.evaluation import evaluate_checkpoint
from gia_mic.features import extract_features
from gia_mic.starter import EMOTIONS
from gia_mic.training import DataArguments, ModelArguments, build_model_and_collator
from modeling_gia_mic.audio_gia_mic import read_audio
from modeling_gia_mic.faces_gia_mic import FaceDetector
from modeling_gia_mic.processing_gia_mic import resample


RAVDESS, FER = SHARED_DATA / "ravdess", SHARED_DATA / "fer2013"
pytestmark = pytest.mark.skipif(
    not (RAVDESS.is_dir() and FER.is_dir()), reason="needs RAVDESS and FER-2013 in ../shared/data"
)
LONG_TEXT = " ".join(
    ["I told you a hundred times that the keys go on the hook by the door, and you still leave them in your coat."] * 8
)


def run_gia_mic(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "gia_mic", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[1])


def speech_at_44k(path: Path) -> Path:
    """A real RAVDESS clip as a 44.1 kHz 16-bit WAV (what a phone or a sound card records)."""
    waveform, rate = sf.read(RAVDESS / "Actor_03" / "03-01-05-02-01-01-03.flac", dtype="float32")
    sf.write(path, resample(waveform, rate, 44100), 44100, subtype="PCM_16")
    return path


def face_in_a_larger_picture(path: Path) -> Path:
    """A real FER-2013 face, enlarged and pasted into a larger grey frame, as a PNG photo; its face is detectable."""
    for face_file in sorted((FER / "test" / "angry").glob("*.jpg")):
        face = Image.open(face_file).convert("RGB").resize((150, 150))
        picture = Image.new("RGB", (480, 360), (128, 128, 128))
        picture.paste(face, (250, 90))
        if FaceDetector.load().face(np.asarray(picture)) is not None:
            picture.save(path)
            return path
    raise AssertionError("no FER-2013 test face is found by the detector")


@pytest.fixture(scope="module")
def item(tmp_path_factory) -> dict[str, Path | str]:
    folder = tmp_path_factory.mktemp("item")
    return {
        "text": LONG_TEXT,
        "audio": speech_at_44k(folder / "speech.wav"),
        "image": face_in_a_larger_picture(folder / "photo.png"),
    }


def training_batch(demo_model: Path, item: dict) -> dict[str, torch.Tensor]:
    """What `gia-mic train --model demo_model` feeds the model for the item, in a dataset built as the builders do."""
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "text": datasets.Value("string"),
            "audio": AUDIO_STRUCT,
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=list(EMOTIONS)),
        }
    )
    row = {
        "id": "item",
        "text": item["text"],
        "audio": audio_file_16k(item["audio"]),
        "image": image_file(item["image"]),
    }
    split = datasets.Dataset.from_list([{**row, "label": EMOTIONS.index("angry")}], features=features)
    split = split.cast_column("audio", datasets.Audio(decode=False))
    _, collator, _ = build_model_and_collator(ModelArguments(model=str(demo_model)), DataArguments(dataset=""), split)
    batch = collator([split[0]])
    batch.pop("labels")
    return batch


def test_training_feeds_the_model_what_the_pipeline_serves(demo_model, classifier, item):
    """A 44.1 kHz speech file, a face inside a larger photo and a text over the 128-token limit."""
    trained = training_batch(demo_model, item)
    sample = classifier.preprocess({"text": item["text"], "audio": str(item["audio"]), "image": str(item["image"])})
    served = classifier.model_inputs([sample], ("text", "audio", "vision"))
    assert sorted(trained) == sorted(served)
    for name in served:
        assert trained[name].shape == served[name].shape, name
        torch.testing.assert_close(trained[name], served[name], rtol=0, atol=1e-6, msg=name)
    assert served["attention_mask"].sum() == 128  # the saved processor's limit, in training and serving alike
    assert served["frame_mask"].sum() == 1  # the face was found and cut out in both


def test_a_file_and_its_samples_give_the_same_waveform(item):
    """The one audio reader: a file read by path, by bytes, and its samples given at their own rate agree."""
    samples, rate = sf.read(item["audio"], dtype="float32")
    from_path = read_audio(item["audio"], 60.0)
    np.testing.assert_array_equal(read_audio(Path(item["audio"]).read_bytes(), 60.0), from_path)
    np.testing.assert_allclose(resample(samples, rate, 16000), from_path, rtol=0, atol=1e-7)


def evaluation_set(folder: Path, items: list[dict], column: str, feature) -> Path:
    """A saved dataset of items labelled with the model's own emotions (its `test` split), as `gia-mic` reads it."""
    features = datasets.Features(
        {"id": datasets.Value("string"), column: feature, "label": datasets.ClassLabel(names=list(EMOTIONS))}
    )
    split = datasets.Dataset.from_list(items, features=features)
    if column == "audio":
        split = split.cast_column("audio", datasets.Audio(decode=False))
    datasets.DatasetDict({"test": split}).save_to_disk(str(folder))
    return folder


def read_predictions(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def assert_same_answers(predictions: dict, served: dict[str, list[dict]]) -> None:
    assert sorted(predictions) == sorted(served)
    for item, ranked in served.items():
        row = predictions[item]
        assert row["label"] == ranked[0]["label"], item
        for answer in ranked:
            assert abs(float(row[answer["label"]]) - answer["score"]) < 1e-4, (item, answer, row)


def test_evaluate_predictions_equal_the_pipeline_on_real_speech(demo_model, classifier, tmp_path):
    clips = sorted(RAVDESS.glob("Actor_0[12]/*.flac"))[::12]
    items = [{"id": clip.stem, "audio": audio_file_16k(clip), "label": 0} for clip in clips]
    dataset = evaluation_set(tmp_path / "speech", items, "audio", AUDIO_STRUCT)
    evaluate(demo_model, dataset, tmp_path / "p.csv")
    served = {clip.stem: classifier({"audio": str(clip)}, transcribe=False) for clip in clips}
    assert_same_answers(read_predictions(tmp_path / "p.csv"), served)


def test_evaluate_predictions_equal_the_pipeline_on_real_faces(demo_model, classifier, tmp_path):
    """A picture without a face is left out of the metrics and the file, and named (the pipeline has no answer)."""
    faces = [path for path in sorted((FER / "test" / "happy").glob("*.jpg"))[:30] if has_face(path)][:8]
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(noise)
    items = [{"id": face.stem, "image": image_file(face), "label": 0} for face in [*faces[:4], noise, *faces[4:]]]
    dataset = evaluation_set(tmp_path / "faces", items, "image", datasets.Image())
    results = evaluate(demo_model, dataset, tmp_path / "p.csv")
    assert results["left_out"] == {"no face found": ["noise"]}
    assert sum(map(sum, results["confusion_matrix"])) == len(faces)
    served = {face.stem: classifier({"image": str(face)}) for face in faces}
    assert_same_answers(read_predictions(tmp_path / "p.csv"), served)
    with pytest.raises(ValueError, match="No face was found"):
        classifier({"image": str(noise)})


def evaluate(model: Path, dataset: Path, predictions: Path) -> dict:
    return evaluate_checkpoint(
        ModelArguments(model=str(model)), DataArguments(dataset=str(dataset)), "test", 4, str(predictions)
    )


def has_face(path: Path) -> bool:
    return FaceDetector.load().face(np.asarray(Image.open(path).convert("RGB"))) is not None


def test_evaluate_predictions_never_replace_a_file_of_the_users(demo_model, tmp_path):
    """Said before the model loads; the user's file is unchanged; only a predictions file may be replaced."""
    notes = tmp_path / "notes.csv"
    notes.write_text("my,own\n1,2\n")
    dataset = tmp_path / "d"
    dataset.mkdir()
    lookalike = tmp_path / "lookalike.csv"  # a user's file with the first two columns of ours
    lookalike.write_text("id,label,comment\n1,happy,ok\n")
    for target, flags, message in (
        (notes, ["--overwrite"], "was not written by this command"),
        (lookalike, ["--overwrite"], "was not written by this command"),
        (demo_model / "p.csv", [], "lies inside the input --model"),
        (tmp_path, [], "is a folder"),
    ):
        result = run_gia_mic("evaluate", "--model", demo_model, "--dataset", dataset, "--predictions", target, *flags)
        assert_one_line_error(result, message)
    assert notes.read_text() == "my,own\n1,2\n" and lookalike.read_text() == "id,label,comment\n1,happy,ok\n"


def test_extract_features_leaves_out_the_rows_without_a_face_and_names_them(demo_model, tmp_path):
    """With the processor's face detection, a picture without a face is left out of the features and listed."""
    faces = [path for path in sorted((FER / "test" / "sad").glob("*.jpg"))[:20] if has_face(path)][:2]
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(noise)
    items = [{"id": path.stem, "image": image_file(path), "label": 0} for path in [faces[0], noise, faces[1]]]
    dataset = evaluation_set(tmp_path / "faces", items, "image", datasets.Image())
    vision = str(demo_model.parent / "face")
    output = extract_features(str(dataset), str(tmp_path / "features"), {"vision": vision}, detect_faces=True)
    assert output["test"]["id"] == [faces[0].stem, faces[1].stem]
    left_out = json.loads((tmp_path / "features" / "left_out.json").read_text())
    assert left_out == {"no face found": {"test": ["noise"]}}
