"""
Every item-level problem of a corpus is skipped and reported by id (or fails with --strict); corrupt data never reaches
the saved dataset, one bad file never aborts a build, and no path built from data leaves the root (issue 10.4-5).
"""

import argparse
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import write_mp4
from PIL import Image

from dataset_scripts import fer2013, iemocap, meld, mosi, ravdess
from dataset_scripts.common import BuildError, BuildReport
from dataset_scripts.synthetic_iemocap import write_miniature_release


ROOT = Path(__file__).resolve().parents[1]


def wav_bytes(samples: int, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, 0.1 * np.sin(np.arange(samples) / 5).astype(np.float32), 16000, format="WAV", subtype=subtype)
    return buffer.getvalue()


def replace_line(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def broken_iemocap(tmp_path_factory) -> Path:
    """The miniature release with one problem per utterance (see the expected reasons below)."""
    base = tmp_path_factory.mktemp("broken")
    root = write_miniature_release(base / "IEMOCAP_full_release", with_video=True)
    wav = root / "Session1/sentences/wav/Ses01F_impro01"
    (wav / "Ses01F_impro01_F000.wav").write_bytes(b"this is not audio" * 8)
    (wav / "Ses01F_impro01_M000.wav").write_bytes(b"")
    (wav / "Ses01F_impro01_F001.wav").write_bytes(wav_bytes(0))
    (wav / "Ses01F_impro01_M001.wav").write_bytes(wav_bytes(16000)[:20000])
    (root / "Session1/dialog/avi/DivX/Ses01F_script01_1.avi").write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 50)
    replace_line(root / "Session1/dialog/EmoEvaluation/Ses01M_script01_2.txt", "[1.9000 - 2.5000]", "[9.0 - 9.5]")
    evaluation = root / "Session2/dialog/EmoEvaluation/Ses02M_impro05a.txt"
    evaluation.write_text(evaluation.read_text() + evaluation.read_text().splitlines()[2] + "\n")
    replace_line(root / "Session2/dialog/EmoEvaluation/Ses02M_impro05b.txt", "[0.4000 - 1.6000]", "[1.6 - 0.4]")
    transcript = root / "Session3/dialog/transcriptions/Ses03F_impro02.txt"
    transcript.write_bytes(b"\xef\xbb\xbf" + transcript.read_bytes())
    outside = base / "outside.wav"
    outside.write_bytes(wav_bytes(8000))
    symlinked = root / "Session4/sentences/wav/Ses04M_script02_1/Ses04M_script02_1_M000.wav"
    symlinked.unlink()
    symlinked.symlink_to(outside)
    for path in sorted((root / "Session5").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (root / "Session5").rmdir()
    return root


EXPECTED_SKIPS = {
    "Session5": "session missing (no dialog/EmoEvaluation/ folder)",
    "Ses01F_impro01_F000": "unreadable audio",
    "Ses01F_impro01_M000": "unreadable audio",
    "Ses01F_impro01_F001": "audio without samples",
    "Ses01F_impro01_M001": "truncated WAV (the header announces 32000 bytes of samples, the file holds 19956)",
    "Ses01F_script01_1_F000": "Ses01F_script01_1.avi has no video stream",
    "Ses01F_script01_1_M000": "Ses01F_script01_1.avi has no video stream",
    "Ses01M_script01_2_F000": "Video Ses01M_script01_2.avi has no decodable frames between 9.0 s and 9.5 s.",
    "Ses02M_impro05a_M000": "duplicate id (an earlier item of train has the same id)",
    "Ses02M_impro05b_F000": "start 1.6 s is after end 0.4 s",
    "Ses04M_script02_1_M000": "path leaves --root",
}


def test_each_broken_item_is_skipped_and_reported_by_id(broken_iemocap, tmp_path):
    output = tmp_path / "out"
    built = iemocap.main(
        [
            "--root",
            str(broken_iemocap),
            "--output",
            str(output),
            "--label-set",
            "all",
            "--with-video",
            "--num-frames",
            "2",
        ]
    )["train"]
    assert built["id"] == ["Ses01M_script01_2_M000", "Ses02M_impro05a_M000", "Ses03F_impro02_F000"]
    assert built[2]["text"] == "Get out.", "a byte-order mark does not hide the first utterance"
    report = json.loads((output / "build_report.json").read_text())
    skipped = {item: reason for item, reason in report["skipped"]["items"]}
    assert skipped.keys() == EXPECTED_SKIPS.keys()
    for item, reason in EXPECTED_SKIPS.items():
        assert skipped[item].startswith(reason), (item, skipped[item])
    assert any("byte-order mark" in reason for _, reason in report["kept_with_warning"])


def test_strict_turns_the_first_problem_into_an_error_naming_it(broken_iemocap, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dataset_scripts.iemocap", "--root", str(broken_iemocap), "--output", str(tmp_path)]
        + ["--label-set", "all", "--strict"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: Session5: session missing (no dialog/EmoEvaluation/ folder) (run without --strict to skip and report "
        "such items)"
    )


def test_a_byte_that_is_not_utf8_is_an_error_naming_file_line_and_column(tmp_path):
    root = write_miniature_release(tmp_path / "release")
    transcript = root / "Session2/dialog/transcriptions/Ses02M_impro05b.txt"
    transcript.write_bytes(transcript.read_bytes().replace(b"lost my", b"lost \xe9my"))
    with pytest.raises(BuildError, match=r"Ses02M_impro05b.txt:1: byte 0xe9 at column 50 is not UTF-8"):
        iemocap.build(root, BuildReport(), tmp_path / "cache")


def test_num_frames_must_be_positive(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dataset_scripts.iemocap", "--root", str(tmp_path), "--output", str(tmp_path / "o")]
        + ["--with-video", "--num-frames", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "--num-frames: must be a whole number, 1 or more; got '0'" in result.stderr


def test_mosi_paths_stay_inside_the_root_and_bad_clips_are_reported(tmp_path):
    root = tmp_path / "MOSI"
    secret = tmp_path / "outside" / "secret.mp4"
    write_mp4(secret)
    rows = [
        ("vidA", "1", "fine clip", "1.0"),
        ("vidA", "../../../outside/secret", "escaping clip id", "0.5"),
        (str(tmp_path / "outside"), "secret", "absolute video id", "0.5"),
        ("vidA", "2", "no video stream", "-1.0"),
        ("vidA", "3", "no audio stream", "2.0"),
        ("vidA", "4", "garbage", "-2.0"),
    ]
    root.mkdir()
    with (root / "label.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_id", "clip_id", "text", "label", "mode"])
        writer.writerows([*row, "train"] for row in rows)
    write_mp4(root / "Raw/vidA/1.mp4")
    write_mp4(root / "Raw/vidA/2.mp4", video=False)
    write_mp4(root / "Raw/vidA/3.mp4", audio=False)
    (root / "Raw/vidA/4.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 broken")
    report = BuildReport()
    args = argparse.Namespace(
        root=root,
        label_file="label.csv",
        folds=None,
        opinion_labels=None,
        text_only=False,
        with_video=True,
        num_frames=2,
    )
    built = mosi.mmsa.build_raw(args, mosi.MOSI, report, tmp_path / "cache")
    assert built["train"]["id"] == ["vidA_1"]
    reasons = dict(report.skipped)
    assert reasons["vidA_../../../outside/secret"].startswith("path leaves --root")
    assert reasons[f"{tmp_path / 'outside'}_secret"].startswith("path leaves --root")
    assert reasons["vidA_2"] == "2.mp4 has no video stream."
    assert reasons["vidA_3"] == "media file without an audio stream"
    assert reasons["vidA_4"].startswith("undecodable media file")


def test_ravdess_files_are_checked_against_their_folder_and_decoded(tmp_path):
    actor = tmp_path / "ravdess" / "Actor_01"
    actor.mkdir(parents=True)
    sf.write(actor / "03-01-05-02-01-01-01.WAV", np.zeros(16000, np.float32) + 0.1, 16000, format="WAV")
    sf.write(actor / "03-01-04-01-01-01-02.wav", np.zeros(16000, np.float32) + 0.1, 16000)
    flac = io.BytesIO()
    sf.write(flac, np.random.default_rng(0).normal(size=16000).astype(np.float32) * 0.1, 16000, format="FLAC")
    (actor / "03-01-03-01-01-01-01.flac").write_bytes(flac.getvalue()[: len(flac.getvalue()) // 2])
    (actor / "notes.txt").write_text("recording notes")
    outside = tmp_path / "elsewhere.wav"
    sf.write(outside, np.zeros(1600, np.float32), 16000)
    (actor / "03-01-02-01-01-01-01.wav").symlink_to(outside)
    report = BuildReport()
    built = ravdess.build(tmp_path / "ravdess", report, tmp_path / "cache")
    assert built["train"]["id"] == ["03-01-05-02-01-01-01"], "an upper-case extension is a wav file too"
    reasons = dict(report.skipped)
    assert reasons["Actor_01/03-01-04-01-01-01-02.wav"] == "the name says actor 02 but the file is in Actor_01"
    assert reasons["Actor_01/03-01-03-01-01-01-01.flac"].startswith("unreadable audio")
    assert reasons["Actor_01/notes.txt"] == "not an audio file (.wav or .flac)"
    assert reasons["Actor_01/03-01-02-01-01-01-01.wav"].startswith("path leaves --root")


def test_fer_truncated_and_empty_images_never_reach_the_dataset(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 48), dtype=np.uint8)).save(buffer, "JPEG")
    for split in ("train", "test"):
        folder = tmp_path / split / "happy"
        folder.mkdir(parents=True)
        (folder / "ok.jpg").write_bytes(buffer.getvalue())
    (tmp_path / "test/happy/truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (tmp_path / "test/happy/empty.jpg").write_bytes(b"")
    report = BuildReport()
    built = fer2013.build(tmp_path, report, tmp_path / "cache")
    assert built["test"]["id"] == ["happy/ok.jpg"]
    reasons = dict(report.skipped)
    assert reasons["happy/truncated.jpg"].startswith("unreadable image (image file is truncated")
    assert reasons["happy/empty.jpg"] == "unreadable image (not a known image format)"


def test_meld_numbers_that_are_not_numbers_name_file_and_line(tmp_path):
    header = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
    good = '1,"Hi.",Ross,neutral,neutral,0,0,1,1,"00:00:01,000","00:00:02,000"\n'
    bad = '2,"Yo.",Joey,joy,positive,zero,1,1,1,"00:00:03,000","00:00:04,000"\n'
    for name in meld.FILES.values():
        (tmp_path / name).write_text(header + good + (bad if name.startswith("dev") else ""))
    with pytest.raises(BuildError, match=r"dev_sent_emo.csv:3: Dialogue_ID 'zero' is not a whole number"):
        meld.build(tmp_path, BuildReport(), tmp_path / "cache")
