"""
CMU-MOSEI and CH-SIMS conversion through the MMSA-family readers MOSI uses: fixture releases in each exact layout
(pickles with the real keys, shapes and dtypes; label.csv + mp4 clips made with PyAV; SDK .csd files), bad input,
the standard-split check, and training on a per-modality label with SIMS's metrics picked from the dataset card.
"""

import csv
import json
import pickle
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
from conftest import beside, mmsa_split, write_csd, write_mp4

from dataset_scripts import mosei, sims
from dataset_scripts.common import BuildError
from gia_mic.cli import main as cli


SIMS_SHAPES = {"lengths": (39, 400, 55), "sizes": (768, 33, 709)}
MOSEI_SHAPES = {"lengths": (50, 500, 375), "sizes": (768, 74, 35)}
CHINESE = ["我今天很开心。", "这部电影真无聊。", "还行吧。", "太棒了！"]


def write_pickle(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(data, handle)
    return path


def sims_release(root: Path) -> Path:
    rng = np.random.default_rng(0)
    data = {
        "train": mmsa_split(
            ["v1$_$0001", "v1$_$0002", "v2$_$0001"], [0.8, -0.6, 0.0], rng, **SIMS_SHAPES, modality_labels=True
        ),
        "valid": mmsa_split(["v3$_$0001"], [-1.0], rng, **SIMS_SHAPES, modality_labels=True),
        "test": mmsa_split(["v4$_$0007", "v4$_$0008"], [0.2, 1.0], rng, **SIMS_SHAPES, modality_labels=True),
    }
    data["train"]["raw_text"] = CHINESE[:3]
    return write_pickle(root / "Processed" / "unaligned_39.pkl", data)


def convert(module, *arguments: str):
    """`module.main(arguments)`; a pickle read (--allow-pickle) must warn that unpickling runs code."""
    expected = pytest.warns(UserWarning, match="runs code") if "--allow-pickle" in arguments else nullcontext()
    with expected:
        return module.main(list(arguments))


def test_sims_pickle_keeps_chinese_text_per_modality_labels_and_real_lengths(tmp_path):
    sims_release(tmp_path / "SIMS")
    output = tmp_path / "sims"
    built = convert(
        sims, "--source", "mmsa-pickle", "--root", str(tmp_path / "SIMS"), "--output", str(output), "--allow-pickle"
    )
    assert {name: split.num_rows for name, split in built.items()} == {"train": 3, "validation": 1, "test": 2}
    row = built["train"][0]
    assert (row["id"], row["video_id"], row["clip_id"], row["text"]) == ("v1_0001", "v1", "0001", "我今天很开心。")
    assert row["label"] == pytest.approx(0.8)
    assert (row["label_T"], row["label_A"], row["label_V"]) == pytest.approx((0.6, 0.8, 1.0))
    assert np.array(row["text_features"]).shape == (7, 768), "length from text_bert's mask"
    audio = np.array(row["audio_features"])
    assert audio.shape == (120, 33) and np.isfinite(audio).all() and audio[0, 0] == 0.0, "-inf -> 0"
    assert np.array(row["vision_features"]).shape == (30, 709)
    # MMSA's 3-class bins: [-1, -0.1] negative, (-0.1, 0.1] neutral, (0.1, 1] positive
    assert built["train"]["label_class"] == [2, 0, 1] and built["test"]["label_class"] == [2, 2]
    card = (output / "README.md").read_text(encoding="utf-8")
    assert "gia_mic:\n  metrics: sims" in card and "label_T" in card and "Chinese" in card
    assert "我今天很开心" in (output / "data" / "train-00000-of-00001.parquet").read_bytes().decode("utf-8", "ignore")
    report = json.loads((output / "build_report.json").read_text())
    assert report["standard_splits"] == {
        "expected": {"train": 1368, "validation": 456, "test": 457},
        "found": {"train": 3, "validation": 1, "test": 2},
        "agrees": False,
    }


def test_the_split_check_is_printed_and_follows_the_release(tmp_path, capsys):
    rng = np.random.default_rng(1)
    data = {
        key: mmsa_split([f"x$_${key}"], [0.2], rng, **SIMS_SHAPES, modality_labels=True)
        for key in ("train", "valid", "test")
    }
    write_pickle(tmp_path / "SIMSv2" / "sims_unaligned.pkl", data)
    convert(
        sims,
        "--release",
        "v2",
        "--source",
        "mmsa-pickle",
        "--root",
        str(tmp_path / "SIMSv2"),
        "--output",
        str(tmp_path / "o"),
        "--allow-pickle",
    )
    printed = capsys.readouterr().out
    assert "Standard split (2722 / 647 / 1034): DIFFERS: train 1 (standard 2722)" in printed


def test_mosei_pickle_and_sdk_forms(tmp_path):
    rng = np.random.default_rng(2)
    data = {
        "train": mmsa_split(["a$_$1", "a$_$2"], [2.6, -0.4], rng, **MOSEI_SHAPES),
        "valid": mmsa_split(["b$_$1"], [0.0], rng, **MOSEI_SHAPES),
        "test": mmsa_split(["c$_$1"], [-3.0], rng, **MOSEI_SHAPES),
    }
    write_pickle(tmp_path / "MOSEI" / "Processed" / "unaligned_50.pkl", data)
    built = convert(
        mosei,
        "--source",
        "mmsa-pickle",
        "--root",
        str(tmp_path / "MOSEI"),
        "--output",
        str(tmp_path / "o"),
        "--allow-pickle",
    )
    row = built["train"][1]
    assert (row["id"], row["label"], row["label_class"]) == ("a_2", pytest.approx(-0.4), 0)
    assert np.array(row["audio_features"]).shape == (120, 74) and np.array(row["vision_features"]).shape == (30, 35)
    assert "label_T" not in built["train"].features

    # The SDK's labels sequence: sentiment first, then six emotion intensities.
    labels = {"a": (np.array([[1.5, 0, 0, 0, 0, 0, 0], [-2.0, 1, 0, 0, 0, 0, 0]]), np.array([[0.0, 2.0], [3.0, 5.0]]))}
    write_csd(tmp_path / "CMU_MOSEI_Labels.csd", "All Labels", labels)
    frames = np.arange(0, 6, 0.5)
    covarep = {"a": (np.tile(frames[:, None], (1, 74)).astype(np.float32), np.stack([frames, frames + 0.5], 1))}
    write_csd(tmp_path / "covarep.csd", "COVAREP", covarep)
    (tmp_path / "folds.json").write_text(json.dumps({"train": ["a"], "valid": [], "test": []}))
    built = mosei.main(
        [
            "--source",
            "csd",
            "--root",
            str(tmp_path),
            "--output",
            str(beside(tmp_path, "p")),
            "--audio-csd",
            "covarep.csd",
            "--folds",
            str(tmp_path / "folds.json"),
        ]
    )
    assert built["train"]["label"] == pytest.approx([1.5, -2.0])
    assert np.array(built["train"][0]["audio_features"]).shape == (4, 74)


def sims_raw_release(root: Path, rows: list[tuple]) -> None:
    root.mkdir(parents=True)
    with (root / "label.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode"]
        )
        writer.writerows(rows)


def test_sims_raw_release_with_real_mp4_clips(tmp_path):
    root = tmp_path / "SIMS"
    rows = [
        ("video_0001", "0001", CHINESE[0], "0.8", "0.6", "1.0", "0.4", "Positive", "train"),
        ("video_0001", "0002", CHINESE[1], "-0.6", "-0.8", "-0.4", "-0.2", "Negative", "valid"),
        ("video_0002", "0001", CHINESE[2], "0.0", "0.0", "0.2", "-0.2", "Neutral", "test"),
    ]
    sims_raw_release(root, rows)
    for video_id, clip_id, *_ in rows[:2]:
        write_mp4(root / "Raw" / video_id / f"{clip_id}.mp4", seconds=1.0, tone=440.0)
    built = sims.main(["--root", str(root), "--output", str(tmp_path / "o"), "--with-video", "--num-frames", "2"])
    assert {name: split.num_rows for name, split in built.items()} == {"train": 1, "validation": 1}
    row = built["validation"][0]
    assert (row["text"], row["label"], row["label_T"], row["label_A"], row["label_V"]) == (
        CHINESE[1],
        pytest.approx(-0.6),
        pytest.approx(-0.8),
        pytest.approx(-0.4),
        pytest.approx(-0.2),
    )
    assert len(row["frames"]) == 2 and row["audio"]["bytes"][:4] == b"RIFF"
    report = json.loads((tmp_path / "o" / "build_report.json").read_text())
    assert report["skipped"]["items"] == [["video_0002_0001", "missing video (Raw/video_0002/0001.mp4)"]]
    with pytest.raises(BuildError, match=r"video_0002_0001: missing video .*--strict"):
        sims.main(["--root", str(root), "--output", str(beside(tmp_path, "p")), "--strict"])


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("label", "1.4", r"label.csv:3 \(v_2\): label is not a CH-SIMS score in \[-1, 1\]; got 1.4"),
        ("label_A", "-2", r"label.csv:3: label_A is not a CH-SIMS score in \[-1, 1\]; got -2.0"),
    ],
)
def test_a_sims_label_outside_its_range_names_the_row(tmp_path, column, value, message):
    header = ["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode"]
    good = ["v", "1", "好", "0.2", "0.2", "0.2", "0.2", "Positive", "train"]
    bad = dict(zip(header, ["v", "2", "坏", "-0.2", "-0.2", "-0.2", "-0.2", "Negative", "train"]))
    bad[column] = value
    sims_raw_release(tmp_path / "SIMS", [good, list(bad.values())])
    with pytest.raises(BuildError, match=message):
        sims.main(["--root", str(tmp_path / "SIMS"), "--output", str(tmp_path / "o"), "--text-only"])


def test_bad_pickles_are_refused_with_the_key_and_shape(tmp_path):
    path = sims_release(tmp_path / "SIMS")
    arguments = ["--source", "mmsa-pickle", "--root", str(tmp_path / "SIMS"), "--output", str(tmp_path / "o")]
    with pytest.raises(BuildError, match="unpickling runs any code it contains.*--allow-pickle"):
        sims.main(arguments)  # and nothing is read: no warning about unpickling was raised
    assert not (tmp_path / "o").exists()

    data = pickle.loads(path.read_bytes())
    del data["valid"]["regression_labels_A"]
    write_pickle(path, data)
    with pytest.raises(BuildError, match=r"split 'valid' lacks key\(s\) \['regression_labels_A'\]"):
        convert(sims, *arguments, "--allow-pickle")

    data = pickle.loads(path.read_bytes())
    data["valid"]["regression_labels_A"] = np.zeros(1, dtype=np.float32)
    data["test"]["vision"] = data["test"]["vision"][:, :, 0]  # (2, 55) instead of (2, 55, 709)
    write_pickle(path, data)
    with pytest.raises(
        BuildError, match=r"split 'test': key 'vision' has shape \(2, 55\); expected \(2, length, size\)"
    ):
        convert(sims, *arguments, "--allow-pickle")

    data["test"]["vision"] = np.zeros((2, 55, 709), dtype=np.float32)
    data["test"]["regression_labels"] = np.array([0.2, 1.6], dtype=np.float32)
    write_pickle(path, data)
    with pytest.raises(BuildError, match=r"id 'v4\$_\$0008': regression_labels is not a CH-SIMS score"):
        convert(sims, *arguments, "--allow-pickle")


def test_training_on_a_per_modality_label_reports_sims_metrics(tmp_path):
    sims_release(tmp_path / "SIMS")
    convert(
        sims,
        "--source",
        "mmsa-pickle",
        "--root",
        str(tmp_path / "SIMS"),
        "--output",
        str(tmp_path / "data"),
        "--allow-pickle",
    )
    cli(
        [
            "train",
            "--dataset",
            str(tmp_path / "data"),
            "--output_dir",
            str(tmp_path / "run"),
            "--label_column",
            "label_T",
            "--modalities",
            "text",
            "audio",
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "2",
            "--config_overrides",
            "hidden_size=16,num_attention_heads=2,intermediate_size=16",
            "--save_strategy",
            "no",
        ]
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    assert set(metrics) == {"acc2", "acc3", "acc5", "f1", "mae", "corr"}
