"""IEMOCAP conversion on synthetic releases in the exact layout of the real one."""

import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest

from dataset_scripts import iemocap
from dataset_scripts.common import BuildError, BuildReport, decode_audio
from dataset_scripts.synthetic_iemocap import MINIATURE, write_full_size_release, write_miniature_release


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return write_miniature_release(tmp_path_factory.mktemp("iemocap") / "IEMOCAP_full_release", with_video=True)


@pytest.fixture(scope="module")
def built(release, tmp_path_factory) -> datasets.Dataset:
    output = tmp_path_factory.mktemp("built") / "iemocap"
    iemocap.main(
        ["--root", str(release), "--output", str(output), "--label-set", "all", "--with-video", "--num-frames", "3"]
    )
    return datasets.load_from_disk(str(output))["train"]


def expected_rows() -> list[dict]:
    rows = []
    for dialog in sorted(MINIATURE, key=lambda d: (d[3:5], d)):
        for u in MINIATURE[dialog]:
            rows.append(
                {
                    "id": f"{dialog}_{u.suffix}",
                    "dialog": dialog,
                    "emotion": u.emotion,
                    "text": u.text,
                    "start": u.start,
                    "end": u.end,
                    "vad": u.vad,
                    "letter": u.suffix[0],
                }
            )
    return rows


def test_every_field_of_every_row(built):
    expected = expected_rows()
    assert built.num_rows == len(expected) == 13
    names = built.features["label"].names
    for row, want in zip(built, sorted(expected, key=lambda r: (r["dialog"][3:5], r["dialog"]))):
        assert row["id"] == want["id"]
        assert row["session"] == int(want["dialog"][3:5])
        assert row["dialog"] == want["dialog"]
        assert row["speaker"] == f"Ses{want['dialog'][3:5]}{want['letter']}"
        assert built.features["gender"].int2str(row["gender"]) == ("female" if want["letter"] == "F" else "male")
        assert row["improvised"] == ("_impro" in want["dialog"])
        assert row["text"] == want["text"]
        assert row["emotion"] == want["emotion"]
        assert names[row["label"]] == iemocap.EMOTION_NAMES[want["emotion"]]
        assert row["start"] == pytest.approx(want["start"]) and row["end"] == pytest.approx(want["end"])
        assert (row["valence"], row["activation"], row["dominance"]) == pytest.approx(want["vad"])
        waveform, rate = decode_audio(row["audio"])
        assert rate == 16000 and len(waveform) == round(16000 * (want["end"] - want["start"]))
        # The synthetic dialog video's grey level is 40 x time: the frames come from the utterance's own span.
        greys = [np.asarray(frame)[:, :32].mean() / 40 for frame in row["frames"]]
        assert len(greys) == 3
        assert want["start"] - 0.2 <= greys[0] < greys[-1] <= want["end"] + 0.2


def test_four_class_merge_and_exclusions(release, tmp_path):
    report = BuildReport()
    dataset = iemocap.build(release, report, tmp_path, label_set="4class")["train"]
    names = dataset.features["label"].names
    assert names == ["neutral", "happy", "sad", "angry"]
    by_id = {row["id"]: names[row["label"]] for row in dataset}
    assert by_id["Ses01F_script01_1_F000"] == "happy" and by_id["Ses01F_script01_1_M000"] == "happy"  # hap + exc
    assert "Ses01F_impro01_M000" not in by_id  # fru
    assert report.excluded == {"not in 4class: fru": 1, "not in 4class: xxx": 1, "not in 4class: oth": 1}
    six = iemocap.build(release, BuildReport(), tmp_path, label_set="6class")["train"]
    assert six.num_rows == 11 and six.features["label"].names[5] == "frustrated"


def test_video_half_keeps_one_actor(release, tmp_path):
    dataset = iemocap.build(release, BuildReport(), tmp_path, num_frames=2, video_half="right")["train"]
    frame = np.asarray(dataset[0]["frames"][0])
    assert frame.shape == (32, 32, 3) and frame[..., 0].mean() > 200, "the reddish right half"


def test_leave_one_session_out_folds(built):
    folds = list(iemocap.leave_one_session_out(built))
    assert [session for session, _, _ in folds] == [1, 2, 3, 4, 5]
    for session, train, test in folds:
        assert set(test["session"]) == {session} and session not in set(train["session"])
        assert not set(train["speaker"]) & set(test["speaker"])
        assert train.num_rows + test.num_rows == built.num_rows


def test_parquet_export_carries_the_audio(release, tmp_path):
    output = tmp_path / "out"
    iemocap.main(["--root", str(release), "--output", str(output)])
    parquet = tmp_path / "train.parquet"
    shutil.copy(output / "data" / "train-00000-of-00001.parquet", parquet)
    shutil.rmtree(output)
    reloaded = datasets.Dataset.from_parquet(str(parquet), cache_dir=str(tmp_path / "cache"))
    assert reloaded.num_rows == 10 and isinstance(reloaded.features["audio"], datasets.Audio)
    waveform, rate = decode_audio(reloaded[0]["audio"])
    assert rate == 16000 and waveform.size == 16000


def test_missing_wav_is_reported_and_strict_fails(release, tmp_path):
    broken = shutil.copytree(release, tmp_path / "IEMOCAP_full_release")
    (broken / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F001.wav").unlink()
    report = BuildReport()
    dataset = iemocap.build(broken, report, tmp_path / "cache")["train"]
    assert dataset.num_rows == 9
    assert report.skipped == [
        ("Ses01F_impro01_F001", "missing wav (Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F001.wav)")
    ]
    with pytest.raises(BuildError, match="Ses01F_impro01_F001: missing wav"):
        iemocap.build(broken, BuildReport(strict=True), tmp_path / "cache")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "[1.0000 - 2.0000]\tSes01F_impro01_F009\tneu\t[2.5, 2.5]",
            r"EmoEvaluation/Ses01F_impro01.txt:\d+: malformed",
        ),
        ("[1.0000 - 2.0000]\tSes01F_impro01_F009\tjoy\t[2.5, 2.5, 2.5]", r"unknown emotion code 'joy'"),
    ],
    ids=["malformed", "unknown-code"],
)
def test_bad_evaluation_lines_name_file_and_line(release, tmp_path, line, message):
    broken = shutil.copytree(release, tmp_path / "IEMOCAP_full_release")
    evaluation = broken / "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    evaluation.write_text(evaluation.read_text() + line + "\n")
    with pytest.raises(BuildError, match=message):
        iemocap.build(broken, BuildReport(), tmp_path / "cache")


def test_root_that_is_not_a_release(tmp_path):
    (tmp_path / "root").mkdir()
    command = ["--root", str(tmp_path / "root"), "--output", str(tmp_path / "o")]
    result = subprocess.run(
        [sys.executable, "-m", "dataset_scripts.iemocap", *command],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "is not an IEMOCAP release: expected folders Session1..Session5" in result.stderr
    assert not (tmp_path / "o").exists()


def test_push_without_token_uploads_nothing(release, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    output = tmp_path / "out"
    with pytest.raises(BuildError, match="needs a token.*Nothing was uploaded"):
        iemocap.main(["--root", str(release), "--output", str(output), "--push-to-hub", "me/iemocap"])
    assert not output.exists(), "nothing half-written"


def test_existing_output_is_not_overwritten_silently(release, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "precious.txt").write_text("keep me")
    for extra in ([], ["--overwrite"]):
        with pytest.raises(ValueError, match="not written by gia-mic.*left untouched"):
            iemocap.main(["--root", str(release), "--output", str(output), *extra])
    assert (output / "precious.txt").read_text() == "keep me"


def test_full_size_release_gives_the_standard_5531(tmp_path):
    root = write_full_size_release(tmp_path / "IEMOCAP_full_release", progress=False)
    report = BuildReport()
    dataset = iemocap.build(root, report, tmp_path / "cache")["train"]
    assert dataset.num_rows == 5531
    names = dataset.features["label"].names
    counts = {name: dataset["label"].count(i) for i, name in enumerate(names)}
    assert counts == {"neutral": 1708, "happy": 1636, "sad": 1084, "angry": 1103}
    assert sum(report.excluded.values()) == 10039 - 5531 and not report.skipped
