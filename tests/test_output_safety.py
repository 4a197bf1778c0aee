"""Nothing the user owns is deleted or overwritten: dry runs, dataset builds and feature extraction (issue 10.1-2)."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import pytest
from conftest import assert_one_line_error, feature_config

from dataset_scripts.synthetic_iemocap import write_miniature_release
from gia_mic.folders import MARKER, UnsafePathError, write_folder
from modeling_gia_mic import GiaMicForEmotionRecognition


ROOT = Path(__file__).resolve().parents[1]


def gia_mic(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gia_mic", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def build_iemocap(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dataset_scripts.iemocap", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def runs(tmp_path) -> Path:
    """A user's runs folder holding one saved model and a file of their own."""
    model = GiaMicForEmotionRecognition(feature_config(("text",)))
    model.save_pretrained(tmp_path / "runs" / "model")
    (tmp_path / "runs" / "notes.txt").write_text("my notes")
    return tmp_path / "runs"


@pytest.mark.parametrize("target", ["precious", "runs", "runs/model", "runs/model/dry"])
def test_dry_run_never_replaces_what_it_did_not_write(runs, target):
    precious = runs.parent / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    before = {folder: snapshot(folder) for folder in (runs, precious)}
    result = gia_mic(
        "push", "model", "--repo", "me/x", "--folder", str(runs / "model"), "--dry-run", str(runs.parent / target)
    )
    assert_one_line_error(result, target.split("/")[-1])
    assert {folder: snapshot(folder) for folder in (runs, precious)} == before


def test_dry_run_may_replace_its_own_earlier_dry_run_with_overwrite(runs, tmp_path):
    out = tmp_path / "upload"
    command = ["push", "model", "--repo", "me/x", "--folder", str(runs / "model"), "--dry-run", str(out)]
    for visibility in ([], ["--public", "--overwrite"]):
        result = gia_mic(*command, *visibility)
        assert result.returncode == 0, result.stderr
        expected = "public" if visibility else "private"  # private unless --public
        files = len(os.listdir(runs / "model"))  # the weights, the config, and the code they need
        assert f"Would upload {files} files to the {expected} model repository me/x" in result.stdout
    assert (out / MARKER).is_file() and (out / "model.safetensors").is_file()
    assert (out / "pipeline_gia_mic.py").is_file() and (out / "recording_gia_mic.py").is_file(), "the pipeline travels"
    assert not any(p.name.startswith(".upload.") for p in tmp_path.iterdir()), "no staging folder left behind"
    assert_one_line_error(gia_mic(*command), "exists from an earlier run; pass --overwrite")


def test_space_dry_run_inside_the_space_source_is_refused():
    result = gia_mic("push", "space", "--repo", "me/demo", "--dry-run", str(ROOT / "spaces_demo" / "out"))
    assert_one_line_error(result, "lies inside the input space folder")
    assert not (ROOT / "spaces_demo" / "out").exists()


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return write_miniature_release(tmp_path_factory.mktemp("iemocap") / "IEMOCAP_full_release")


@pytest.mark.parametrize("where", ["root", "parent"])
def test_build_never_writes_over_its_source(release, where):
    before = snapshot(release)
    output = release if where == "root" else release.parent
    result = build_iemocap("--root", str(release), "--output", str(output), "--overwrite")
    assert result.returncode == 2
    assert ("is the input --root" if where == "root" else "contains the input --root") in result.stderr
    assert snapshot(release) == before


def test_overwrite_swaps_in_the_new_build_and_keeps_the_old_until_then(release, tmp_path):
    output = tmp_path / "iemocap"
    assert build_iemocap("--root", str(release), "--output", str(output), "--label-set", "all").returncode == 0
    assert datasets.load_from_disk(str(output))["train"].num_rows == 13
    result = build_iemocap("--root", str(release), "--output", str(output))
    assert result.returncode == 2 and "pass --overwrite" in result.stderr
    result = build_iemocap("--root", str(release), "--output", str(output), "--overwrite")
    assert result.returncode == 0, result.stderr
    assert datasets.load_from_disk(str(output))["train"].num_rows < 13, "the 4-class build replaced the full one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iemocap"], "no staging or previous folder left"


KILLED_WRITE = """
import os, signal, sys
from pathlib import Path
from gia_mic.folders import write_folder

def write(staging):
    (staging / "half.txt").write_text("half of the new build")
    if sys.argv[2] == "during-write":
        os.kill(os.getpid(), signal.SIGKILL)

write_folder(Path(sys.argv[1]), write, overwrite=True, command="t")
if sys.argv[2] == "after-swap":
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("moment", ["during-write", "after-swap"])
def test_kill_9_leaves_the_old_or_the_new_complete_folder(tmp_path, moment):
    output = tmp_path / "out"
    write_folder(output, lambda staging: (staging / "old.txt").write_text("old build"), overwrite=False, command="t")
    process = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED_WRITE), str(output), moment], cwd=ROOT, capture_output=True
    )
    assert process.returncode == -signal.SIGKILL
    names = {p.name for p in output.iterdir()}
    expected = {"old.txt", MARKER} if moment == "during-write" else {"half.txt", MARKER}
    assert names == expected


def test_failed_write_leaves_the_old_folder_and_no_staging(tmp_path):
    output = tmp_path / "out"
    write_folder(output, lambda staging: (staging / "old.txt").write_text("old"), overwrite=False, command="t")

    def failing(staging: Path) -> None:
        (staging / "new.txt").write_text("new")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_folder(output, failing, overwrite=True, command="t")
    assert (output / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_file_or_a_symlink_is_never_replaced(tmp_path):
    (tmp_path / "file").write_text("mine")
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    for path in (tmp_path / "file", tmp_path / "link"):
        with pytest.raises(UnsafePathError, match="exists and is not a folder"):
            write_folder(path, lambda staging: None, overwrite=True, command="t")
    assert (tmp_path / "file").read_text() == "mine" and os.path.islink(tmp_path / "link")


def test_extract_features_never_writes_over_its_dataset(tmp_path):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    dataset = tmp_path / "raw"
    features = Features({"id": Value("string"), "text": Value("string"), "label": ClassLabel(names=["a", "b"])})
    DatasetDict(train=Dataset.from_dict({"id": ["1"], "text": ["hi"], "label": [0]}, features=features)).save_to_disk(
        str(dataset)
    )
    before = snapshot(dataset)
    for output in (dataset, tmp_path):
        result = gia_mic("extract-features", "--dataset", str(dataset), "--output", str(output), "--text_encoder", "x")
        assert_one_line_error(result, "the input --dataset")
    assert snapshot(dataset) == before
