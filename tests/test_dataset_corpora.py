"""MELD, RAVDESS and FER-2013 conversions on the real corpora in ../shared/data."""

import shutil

import datasets
import numpy as np
import pytest
import soundfile as sf
from conftest import SHARED_DATA

from dataset_scripts import fer2013, meld, ravdess
from dataset_scripts.common import BuildError, BuildReport, decode_audio


def corpus(name: str):
    path = SHARED_DATA / name
    return pytest.mark.skipif(not path.is_dir(), reason=f"real {name} corpus not found at {path}")


def split_sizes(dataset: datasets.DatasetDict) -> dict[str, int]:
    return {name: split.num_rows for name, split in dataset.items()}


def label_counts(split: datasets.Dataset) -> dict[str, int]:
    names = split.features["label"].names
    return {name: split["label"].count(i) for i, name in enumerate(names)}


@corpus("meld")
def test_meld_official_splits_and_counts(tmp_path):
    built = meld.main(["--root", str(SHARED_DATA / "meld"), "--output", str(tmp_path / "meld")])
    assert split_sizes(built) == {"train": 9989, "validation": 1109, "test": 2610}
    assert label_counts(built["test"]) == {
        "neutral": 1256,
        "joy": 402,
        "surprise": 281,
        "anger": 345,
        "sadness": 208,
        "disgust": 68,
        "fear": 50,
    }
    first = built["train"][0]
    assert first["id"] == "dia0_utt0" and first["speaker"] == "Chandler"
    assert first["text"].startswith("also I was the point person")
    assert first["start"] == pytest.approx(16 * 60 + 16.059, abs=1e-3)
    assert datasets.load_from_disk(str(tmp_path / "meld"))["validation"].num_rows == 1109


def test_meld_unknown_emotion_names_the_line(tmp_path):
    header = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
    good = '1,Hi.,Joey,joy,positive,0,0,1,1,"00:00:01,000","00:00:02,000"\n'
    for name in meld.FILES.values():
        (tmp_path / name).write_text(header + good)
    (tmp_path / "dev_sent_emo.csv").write_text(header + good + good.replace("joy", "happiness"))
    with pytest.raises(BuildError, match=r"dev_sent_emo.csv:3: Emotion 'happiness' is not one of"):
        meld.build(tmp_path, BuildReport(), tmp_path / "cache")


@corpus("ravdess")
def test_ravdess_speaker_independent_split_and_audio(tmp_path):
    output = tmp_path / "ravdess"
    built = ravdess.main(["--root", str(SHARED_DATA / "ravdess"), "--output", str(output)])
    assert split_sizes(built) == {"train": 1200, "test": 240}
    assert set(built["test"]["actor"]) == {21, 22, 23, 24} and max(built["train"]["actor"]) == 20
    assert label_counts(built["train"])["neutral"] == 80 and label_counts(built["test"])["angry"] == 32
    row = built["test"][0]
    waveform, rate = decode_audio(row["audio"])
    original = SHARED_DATA / "ravdess" / f"Actor_{row['actor']:02d}" / f"{row['id']}.flac"
    assert rate == 16000 and len(waveform) == sf.info(str(original)).frames
    assert row["text"] in ravdess.STATEMENTS.values() and built["test"].features["gender"].int2str(row["gender"]) == (
        "male" if row["actor"] % 2 else "female"
    )
    shutil.rmtree(output / "train")  # the Parquet export stands on its own
    parquet = datasets.Dataset.from_parquet(str(output / "data" / "test-00000-of-00001.parquet"))
    assert decode_audio(parquet[0]["audio"])[0].shape == waveform.shape

    folds = list(ravdess.actor_folds(built["train"], k=4))
    assert sorted(a for held_out, _, _ in folds for a in held_out) == list(range(1, 21))
    for held_out, train, test in folds:
        assert not set(train["actor"]) & set(test["actor"]) and set(test["actor"]) == set(held_out)


def test_ravdess_48k_originals_are_resampled_and_bad_names_are_reported(tmp_path):
    actor = tmp_path / "Actor_01"
    actor.mkdir()
    sf.write(actor / "03-01-05-02-01-01-01.wav", np.zeros((48000, 2), np.float32), 48000)
    built = ravdess.build(tmp_path, BuildReport(), tmp_path / "cache")
    waveform, rate = decode_audio(built["train"][0]["audio"])
    assert rate == 16000 and waveform.shape == (16000,)
    sf.write(actor / "03-01-09-01-01-01-01.wav", np.zeros(100, np.float32), 16000)
    report = BuildReport()
    assert ravdess.build(tmp_path, report, tmp_path / "cache")["train"].num_rows == 1
    assert [(item, reason[:32]) for item, reason in report.skipped] == [
        ("Actor_01/03-01-09-01-01-01-01.wav", "not a RAVDESS speech file name; ")
    ]
    with pytest.raises(BuildError, match="03-01-09-01-01-01-01.wav: not a RAVDESS speech file name"):
        ravdess.build(tmp_path, BuildReport(strict=True), tmp_path / "cache")


@corpus("fer2013")
def test_fer2013_counts(tmp_path):
    built = fer2013.main(["--root", str(SHARED_DATA / "fer2013"), "--output", str(tmp_path / "fer")])
    assert split_sizes(built) == {"train": 28709, "test": 7178}
    assert label_counts(built["test"]) == {
        "angry": 958,
        "disgust": 111,
        "fear": 1024,
        "happy": 1774,
        "neutral": 1233,
        "sad": 1247,
        "surprise": 831,
    }
    image = built["test"][0]["image"]
    assert image.size == (48, 48)


def test_fer2013_corrupted_image_is_reported(tmp_path):
    for split in ("train", "test"):
        folder = tmp_path / split / "happy"
        folder.mkdir(parents=True)
        from PIL import Image

        Image.fromarray(np.zeros((48, 48), np.uint8)).save(folder / "ok.jpg")
    (tmp_path / "test" / "happy" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    report = BuildReport()
    built = fer2013.build(tmp_path, report, tmp_path / "cache")
    assert split_sizes(built) == {"train": 1, "test": 1}
    assert report.skipped == [("happy/broken.jpg", "unreadable image (not a known image format)")]
