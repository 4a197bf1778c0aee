"""
Nothing the user owns is lost (issue 27.1-3, 9): one output rule for every command that writes. The output is never
an input, inside one or around one; a folder is replaced only with --overwrite, only if the same command wrote it
and only if it holds nothing else; problems with the output are said before any work; folders follow the umask.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import assert_one_line_error, feature_config

from gia_mic.folders import MARKER, UnsafePathError, write_folder
from modeling_gia_mic import GiaMicForEmotionRecognition


ROOT = Path(__file__).resolve().parents[1]
GIA_MIC = str(Path(sys.executable).with_name("gia-mic"))


def gia_mic(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([GIA_MIC, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def checksums(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def model_copy(demo_model, tmp_path) -> Path:
    """The user's own copy of a real model folder (weights, asr/, vad/, tokenizer, remote code)."""
    return Path(shutil.copytree(demo_model, tmp_path / "my-model"))


@pytest.fixture
def recording(tmp_path) -> Path:
    """A real 3-s WAV without speech (it analyses to an empty timeline, quickly)."""
    path = tmp_path / "fan.wav"
    sf.write(path, (0.01 * np.random.default_rng(0).standard_normal(16000 * 3)).astype(np.float32), 16000)
    return path


def test_analyze_and_export_never_write_over_the_model_they_read(model_copy, recording):
    before = checksums(model_copy)
    assert_one_line_error(
        gia_mic("analyze", recording, "--model", model_copy, "--output", model_copy, "--overwrite"),
        "is the input --model",
    )
    assert_one_line_error(
        gia_mic("export", "--model", model_copy, "--output", model_copy, "--overwrite"), "is the input --model"
    )
    assert_one_line_error(
        gia_mic("analyze", recording, "--model", model_copy, "--output", model_copy / "asr", "--overwrite"),
        "lies inside the input --model",
    )
    assert checksums(model_copy) == before


def test_a_folder_is_replaced_only_by_the_command_that_wrote_it(tmp_path, recording):
    """An export's folder is not an analysis's to replace, with or without --overwrite."""
    head = tmp_path / "head"
    GiaMicForEmotionRecognition(feature_config(("text",))).save_pretrained(head)
    exported = tmp_path / "deploy"
    done = gia_mic("export", "--model", head, "--output", exported)
    assert done.returncode == 0, done.stderr
    before = checksums(exported)
    assert_one_line_error(
        gia_mic("analyze", recording, "--model", head, "--output", exported, "--overwrite"),
        "was written by `gia-mic export`, not `gia-mic analyze`",
    )
    assert checksums(exported) == before


def test_an_earlier_analysis_holding_the_users_files_is_not_replaced(demo_model, recording, tmp_path):
    output = tmp_path / "fan-emotions"
    first = gia_mic("analyze", recording, "--model", demo_model, "--output", output)
    assert first.returncode == 0, first.stderr
    moved = output / recording.name  # the user keeps the recording with its timeline, and adds notes
    shutil.move(recording, moved)
    (output / "notes.txt").write_text("what the interviewee said off the record")
    before = checksums(output)
    assert_one_line_error(
        gia_mic("analyze", moved, "--model", demo_model, "--output", output, "--overwrite"),
        "contains the input recording",
    )
    shutil.move(moved, recording)
    assert_one_line_error(
        gia_mic("analyze", recording, "--model", demo_model, "--output", output, "--overwrite"),
        "holds notes.txt, which `gia-mic analyze` did not write",
    )
    assert checksums(output) == {name: sha for name, sha in before.items() if name != recording.name}
    (output / "notes.txt").unlink()
    again = gia_mic("analyze", recording, "--model", demo_model, "--output", output, "--overwrite")
    assert again.returncode == 0, again.stderr  # only its own files: replaced, as asked


TRAIN = ["--max_steps", "1", "--per_device_train_batch_size", "2", "--save_strategy", "no", "--use_cpu", "true"]


@pytest.fixture
def dataset(tmp_path) -> Path:
    from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

    rng = np.random.default_rng(0)
    rows = {
        "id": [f"utt{i}" for i in range(4)],
        "text_features": [rng.normal(size=(3, 4)).astype(np.float32) for _ in range(4)],
        "label": [0, 1, 0, 1],
    }
    features = Features(
        {"id": Value("string"), "text_features": List(List(Value("float32"))), "label": ClassLabel(names=["a", "b"])}
    )
    path = tmp_path / "data"
    DatasetDict(train=Dataset.from_dict(rows, features=features)).save_to_disk(str(path))
    return path


def test_train_never_writes_over_its_dataset_or_a_users_folder(dataset, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("# my paper's model")
    (mine / "config.json").write_text('{"mine": true}')
    before = {folder: checksums(folder) for folder in (dataset, mine)}
    for output, message in [
        (dataset, "is the input --dataset"),
        (dataset / "train", "lies inside the input --dataset"),
        (mine, "was not written by gia-mic"),
    ]:
        assert_one_line_error(gia_mic("train", "--dataset", dataset, "--output_dir", output, *TRAIN), message)
    assert {folder: checksums(folder) for folder in (dataset, mine)} == before


def test_train_may_write_again_into_its_own_folder_but_not_over_a_file_added_to_it(dataset, tmp_path):
    output = tmp_path / "run"
    for _ in range(2):
        done = gia_mic("train", "--dataset", dataset, "--output_dir", output, *TRAIN)
        assert done.returncode == 0, done.stderr
    assert (output / MARKER).is_file() and (output / "model.safetensors").is_file()
    (output / "my-analysis.ipynb").write_text("{}")
    assert_one_line_error(
        gia_mic("train", "--dataset", dataset, "--output_dir", output, *TRAIN),
        "holds my-analysis.ipynb, which `gia-mic train` did not write",
    )
    assert (output / "my-analysis.ipynb").read_text() == "{}"


def test_output_problems_are_said_before_the_model_loads(recording, tmp_path):
    """A path under a file, or the current folder: refused at once, naming the output (never a `.partial-` path)."""
    (tmp_path / "report.pdf").write_text("%PDF")
    desk = tmp_path / "desk"
    desk.mkdir()
    (desk / "todo.txt").write_text("call back")
    missing_model = tmp_path / "no-such-model"  # never loaded: the output is refused first
    for output, cwd, message in [
        (tmp_path / "report.pdf" / "out", tmp_path, "report.pdf is a file, not a folder"),
        (".", desk, "The output folder . is not empty and was not written by gia-mic"),
    ]:
        result = gia_mic("analyze", recording, "--model", missing_model, "--output", output, cwd=cwd)
        assert_one_line_error(result, message)
        assert ".partial-" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["desk", "fan.wav", "report.pdf"]
    assert [p.name for p in desk.iterdir()] == ["todo.txt"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_output_folders_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_folder(
            tmp_path / "out", lambda staging: (staging / "a.txt").write_text("a"), command="t", overwrite=False
        )
    finally:
        os.umask(previous)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_marker_from_another_command_or_with_extra_files_is_not_enough(tmp_path):
    output = tmp_path / "out"
    write_folder(
        output, lambda staging: (staging / "a.txt").write_text("a"), command="gia-mic analyze", overwrite=False
    )
    with pytest.raises(UnsafePathError, match="written by `gia-mic analyze`, not `gia-mic export`"):
        write_folder(output, lambda staging: None, command="gia-mic export", overwrite=True)
    (output / "a.txt").write_text("the user's edit")  # a file of the command's, changed since
    with pytest.raises(UnsafePathError, match="holds a.txt, which `gia-mic analyze` did not write"):
        write_folder(output, lambda staging: None, command="gia-mic analyze", overwrite=True)
    assert (output / "a.txt").read_text() == "the user's edit"
