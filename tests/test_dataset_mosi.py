"""CMU-MOSI conversion: real labels from ../shared/data, and each of the three source forms on files in real format."""

import csv
import json
import pickle
from pathlib import Path

import datasets
import numpy as np
import pytest
from conftest import SHARED_DATA, beside, mmsa_split, write_csd, write_mp4

from dataset_scripts import mosi
from dataset_scripts.common import BuildError, decode_audio


MOSI = SHARED_DATA / "mosi"
needs_mosi = pytest.mark.skipif(not MOSI.is_dir(), reason=f"real MOSI labels not found at {MOSI}")
FOLDS = {"train": ["vidA"], "valid": ["vidB"], "test": ["vidC"]}


@needs_mosi
def test_real_labels_give_the_standard_split_and_exact_labels(tmp_path):
    output = tmp_path / "mosi"
    built = mosi.main(
        [
            "--root",
            str(MOSI),
            "--label-file",
            "segments.csv",
            "--text-only",
            "--output",
            str(output),
            "--folds",
            str(MOSI / "cmu_sdk_standard_folds.json"),
            "--opinion-labels",
            str(MOSI / "OpinionLevelSentiment.csv"),
        ]
    )
    assert {split: built[split].num_rows for split in built} == {"train": 1284, "validation": 229, "test": 686}
    with (MOSI / "OpinionLevelSentiment.csv").open() as handle:
        truth = {(r[2], r[3]): (float(r[4]), float(r[0]), float(r[1])) for r in csv.reader(handle)}
    seen = 0
    for split in built.values():
        for video_id, clip_id, label, start, end in zip(
            split["video_id"], split["clip_id"], split["label"], split["start"], split["end"]
        ):
            want_label, want_start, want_end = truth[(video_id, clip_id)]
            assert label == pytest.approx(want_label, abs=1e-6)
            assert (start, end) == pytest.approx((want_start, want_end), abs=1e-4)
            seen += 1
    assert seen == len(truth) == 2199
    negatives = {split: sum(np.array(built[split]["label"]) < 0) for split in built}
    assert negatives == {"train": 552, "validation": 92, "test": 379}
    report = json.loads((output / "build_report.json").read_text())
    assert sorted(item for item, _ in report["kept_with_warning"]) == [
        "2WGyTLYerpo_44",
        "5W7Z1C_fDaE_24",
        "BioHAh1qJAQ_30",
        "lXPQBPVc5Cw_30",
    ]
    reloaded = datasets.load_from_disk(str(output))
    assert reloaded["test"].features["label_class"].names == ["negative", "neutral", "positive"]


def test_raw_release_with_mp4_media(tmp_path):
    root = tmp_path / "MOSI"
    rows = [
        ("vidA", "1", "i loved it", "2.4", "train"),
        ("vidA", "2", "meh", "0", "train"),
        ("vidB", "1", "awful", "-2.8", "valid"),
        ("vidC", "3", "not bad", "0.6", "test"),
    ]
    root.mkdir()
    with (root / "label.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode"]
        )
        for video_id, clip_id, text, label, mode in rows:
            writer.writerow([video_id, clip_id, text, label, label, label, label, "x", mode])
    for index, (video_id, clip_id, *_) in enumerate(rows[:3]):
        write_mp4(root / "Raw" / video_id / f"{clip_id}.mp4", seconds=1.0 + 0.5 * index, tone=300.0)
    output = tmp_path / "out"
    built = mosi.main(
        [
            "--root",
            str(root),
            "--output",
            str(output),
            "--with-video",
            "--num-frames",
            "4",
            "--folds",
            str(_write_json(tmp_path / "folds.json", FOLDS)),
        ]
    )

    assert {split: built[split].num_rows for split in built} == {"train": 2, "validation": 1}
    report = json.loads((output / "build_report.json").read_text())
    assert report["skipped"]["items"] == [["vidC_3", "missing video (Raw/vidC/3.mp4)"]]
    row = built["validation"][0]
    assert (row["id"], row["text"], row["label_class"]) == ("vidB_1", "awful", 0)
    waveform, rate = decode_audio(row["audio"])
    assert rate == 16000 and abs(len(waveform) - 2.0 * 16000) < 2048  # 2 s clip (+ AAC priming)
    spectrum = np.abs(np.fft.rfft(waveform))
    assert np.fft.rfftfreq(len(waveform), 1 / 16000)[spectrum.argmax()] == pytest.approx(300, abs=2)
    assert len(row["frames"]) == 4 and row["frames"][0].size == (32, 32)


def _write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value))
    return path


def test_mode_that_disagrees_with_the_folds_is_an_error(tmp_path):
    (tmp_path / "label.csv").write_text("video_id,clip_id,text,label,mode\nvidA,1,hi,1.0,test\n")
    with pytest.raises(BuildError, match=r"label.csv:2: mode 'test' disagrees with the folds"):
        mosi.main(
            [
                "--root",
                str(tmp_path),
                "--text-only",
                "--output",
                str(beside(tmp_path, "o")),
                "--folds",
                str(_write_json(tmp_path / "f.json", FOLDS)),
            ]
        )


def test_mmsa_pickle_needs_opt_in_and_gives_feature_columns(tmp_path):
    rng = np.random.default_rng(0)
    data = {
        "train": mmsa_split(["vidA$_$1", "vidA$_$2"], [1.2, -0.4], rng),
        "valid": mmsa_split(["vidB$_$1"], [0.0], rng),
        "test": mmsa_split(["vidC$_$5"], [-3.0], rng),
    }
    (tmp_path / "Processed").mkdir()
    with (tmp_path / "Processed" / "unaligned_50.pkl").open("wb") as handle:
        pickle.dump(data, handle)

    with pytest.raises(BuildError, match="--allow-pickle"):
        mosi.main(["--source", "mmsa-pickle", "--root", str(tmp_path), "--output", str(beside(tmp_path, "o"))])
    with pytest.warns(UserWarning, match="runs code"):
        built = mosi.main(
            [
                "--source",
                "mmsa-pickle",
                "--root",
                str(tmp_path),
                "--output",
                str(beside(tmp_path, "o")),
                "--allow-pickle",
            ]
        )
    row = built["train"][0]
    assert (row["id"], row["video_id"], row["clip_id"], row["text"]) == ("vidA_1", "vidA", "1", "sentence 0")
    assert np.array(row["text_features"]).shape == (7, 768)
    audio = np.array(row["audio_features"])
    assert audio.shape == (120, 5) and np.isfinite(audio).all() and audio[0, 0] == 0.0
    assert np.array(row["vision_features"]).shape == (30, 20)
    assert built["test"][0]["label"] == -3.0 and built["validation"][0]["label_class"] == 1


def test_sdk_csd_files_are_aligned_to_the_segments(tmp_path):
    write_csd(
        tmp_path / "labels.csd",
        "Opinion Segment Labels",
        {
            "vidA": (np.array([[-1.5], [2.0]]), np.array([[3.0, 5.0], [0.0, 2.0]])),  # stored out of time order
            "vidC": (np.array([[0.4]]), np.array([[1.0, 2.0]])),
        },
    )
    frames = np.arange(0, 6, 0.5)
    covarep = {
        vid: (np.tile(frames[:, None], (1, 5)).astype(np.float32), np.stack([frames, frames + 0.5], 1))
        for vid in ("vidA", "vidC")
    }
    write_csd(tmp_path / "covarep.csd", "COVAREP", covarep)
    words = np.array([[b"hello"], [b"sp"], [b"world"], [b"bye"]], dtype=object)
    word_times = np.array([[0.0, 0.9], [0.9, 1.0], [1.0, 1.8], [3.2, 4.0]])
    write_csd(tmp_path / "words.csd", "words", {"vidA": (words.astype("S"), word_times)})

    built = mosi.main(
        [
            "--source",
            "csd",
            "--root",
            str(tmp_path),
            "--output",
            str(beside(tmp_path, "o")),
            "--labels-csd",
            "labels.csd",
            "--audio-csd",
            "covarep.csd",
            "--words-csd",
            "words.csd",
            "--folds",
            str(_write_json(tmp_path / "folds.json", FOLDS)),
        ]
    )
    train = built["train"]
    assert train["id"] == ["vidA_1", "vidA_2"]
    assert train["text"] == ["hello world", "bye"]
    assert train["label"] == pytest.approx([2.0, -1.5])
    first = np.array(train[0]["audio_features"])
    assert first[:, 0].tolist() == [0.0, 0.5, 1.0, 1.5], "frames overlapping [0, 2] s"
    assert built["test"][0]["label_class"] == 2 and "text_features" not in train.features
    with pytest.raises(BuildError, match="needs --folds"):
        mosi.main(
            [
                "--source",
                "csd",
                "--root",
                str(tmp_path),
                "--output",
                str(beside(tmp_path, "p")),
                "--labels-csd",
                "labels.csd",
            ]
        )
