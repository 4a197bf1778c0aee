"""
`gia-mic analyze` on many recordings (issue 25.1): folders, lists and files; one timeline folder per recording and
`index.csv`; a bad file is an error row; a rerun skips what is done; a kill -9 mid-run loses only the recording in
flight; nothing of the user's in the output folder is touched. Real recordings (RAVDESS speech, FER-2013 faces), real
processes.
"""

import csv
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SHARED_DATA, accelerate_launch

from gia_mic.folders import held
from gia_mic.many_recordings import INDEX_COLUMNS, expand
from modeling_gia_mic.speakers_gia_mic import DiarizationOptions


needs_data = pytest.mark.skipif(
    not (SHARED_DATA / "ravdess").is_dir() or not (SHARED_DATA / "fer2013").is_dir(),
    reason="needs RAVDESS and FER-2013 in ../shared/data",
)
GIA_MIC = str(Path(sys.executable).with_name("gia-mic"))


@pytest.fixture
def calls(talk, tmp_path) -> Path:
    """A folder of recordings: audio, a video in a subfolder, a broken file and a note that is not media."""
    folder = tmp_path / "calls"
    (folder / "monday").mkdir(parents=True)
    shutil.copy(talk["audio"], folder / "first.wav")
    shutil.copy(talk["video"], folder / "monday" / "second.mkv")
    (folder / "broken.mp3").write_bytes(b"this is not an mp3 file" * 100)
    (folder / "notes.txt").write_text("not a recording")
    return folder


def analyze(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([GIA_MIC, "analyze", *args], capture_output=True, text=True, **kwargs)


def index(output: Path) -> list[dict]:
    with (output / "index.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@needs_data
def test_a_folder_gives_one_timeline_per_recording_and_an_index(calls, demo_model, tmp_path):
    output = tmp_path / "out"
    done = analyze(str(calls), "--model", str(demo_model), "--output", str(output), "--no-transcribe")
    assert done.returncode == 0, done.stderr
    rows = {Path(row["path"]).name: row for row in index(output)}
    assert list(index(output)[0]) == list(INDEX_COLUMNS)
    assert set(rows) == {"first.wav", "second.mkv", "broken.mp3"}, "media files only, every one of them"
    assert rows["broken.mp3"]["status"].startswith("error: broken.mp3") and "\n" not in rows["broken.mp3"]["status"]
    for name, folder in (("first.wav", "first"), ("second.mkv", "monday/second")):
        assert rows[name]["status"] == "done" and rows[name]["process"] == "0" and float(rows[name]["seconds"]) > 0
        assert float(rows[name]["duration"]) > 10 and int(rows[name]["utterances"]) >= 3
        assert {"timeline.csv", "timeline.json", "timeline.png"} <= {p.name for p in (output / folder).iterdir()}
    assert "2 of 3 recordings analysed, 1 with an error" in done.stdout and "Recordings" in done.stderr
    assert "[1/2] Finding speech" not in done.stderr, "per-recording stages only with --verbose"

    first_rows = index(output)
    again = analyze(str(calls), "--model", str(demo_model), "--output", str(output), "--no-transcribe")
    assert again.returncode == 0, again.stderr
    assert "2 of 3 recordings were analysed by an earlier run: skipped" in again.stdout
    assert index(output) == first_rows, "the finished rows kept as they were, the broken file tried again"

    other = tmp_path / "other"  # another recording of the same name: analysed, not taken for the first
    other.mkdir()
    shutil.copy(calls / "first.wav", other / "first.wav")
    third = analyze(str(other), "--model", str(demo_model), "--output", str(output), "--no-transcribe")
    assert third.returncode == 0, third.stderr
    assert "earlier run" not in third.stdout and index(output)[0]["path"] == str(other / "first.wav")
    assert index(output)[1:] == first_rows, "the rows of the recordings not in this run are kept"

    speakers = analyze(
        str(calls), "--model", str(demo_model), "--output", str(output), "--no-transcribe", "--speakers"
    )
    assert speakers.returncode == 0, speakers.stderr
    message = "1 of 3 recordings were analysed by an earlier run with other settings: analysed again."
    assert message in speakers.stdout, "second.mkv (first.wav's folder holds the other first.wav's timeline)"
    assert "skipped" not in speakers.stdout, "a folder made without speakers is not taken for one made with them"
    for folder in ("first", "monday/second"):
        assert "speaker" in (output / folder / "timeline.csv").read_text().splitlines()[0]

    made = output / "monday" / "second" / "timeline.json"  # as made before timelines recorded their settings
    made.write_text(json.dumps({k: v for k, v in json.loads(made.read_text()).items() if k != "settings"}))
    args = ("--model", str(demo_model), "--output", str(output), "--no-transcribe", "--speakers")
    older = analyze(str(calls), *args)
    assert "2 of 3 recordings were analysed by an earlier run: skipped" in older.stdout, "no settings: taken as these"


def test_settings_are_recorded_as_they_mean(tmp_path, monkeypatch):
    from gia_mic.analysis import AnalysisSettings

    (tmp_path / "model").mkdir()
    monkeypatch.chdir(tmp_path)
    relative = AnalysisSettings("model", language="French").record()
    assert relative == AnalysisSettings(str(tmp_path / "model"), language="fr").record()
    assert relative["model"] == str(tmp_path / "model"), "a local folder by its absolute path"
    assert (
        AnalysisSettings("model").record()["language"]
        == AnalysisSettings("model", language="Auto").record()["language"]
    )
    assert AnalysisSettings("someone/emotions").record()["model"] == "someone/emotions", "a Hub id as it is"
    assert AnalysisSettings("model", speakers=DiarizationOptions(names=("Ann",))).record()["speakers"]["names"] == [
        "Ann"
    ]


@needs_data
def test_a_kill_mid_run_loses_only_the_recording_in_flight(talk, demo_model, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(4):
        shutil.copy(talk["audio"], folder / f"call{number}.wav")
    output = tmp_path / "out"
    command = [GIA_MIC, "analyze", str(folder), "--model", str(demo_model), "--output", str(output), "--no-transcribe"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (output / "call0" / "timeline.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (output / "call0" / "timeline.json").exists()
    first = (output / "call0" / "timeline.json").stat().st_mtime_ns
    partial = [row for row in index(output) if row["status"] == "done"]
    assert 1 <= len(partial) < 4 and all(row["status"] == "done" for row in index(output)), "the index is whole"
    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(partial)} of 4 recordings were analysed by an earlier run: skipped" in rerun.stdout
    assert [row["status"] for row in index(output)] == ["done"] * 4
    assert (output / "call0" / "timeline.json").stat().st_mtime_ns == first, "a finished recording is not redone"
    assert not list(output.rglob(".*partial-*")), "what the kill left half-written is gone"


def test_an_output_folder_in_use_by_another_run_is_refused(talk, demo_model, tmp_path):
    """The run holds OUT (flock) while it writes there: a second run on it stops at once, before any work."""
    (tmp_path / "calls").mkdir()
    shutil.copy(talk["audio"], tmp_path / "calls" / "first.wav")
    output = tmp_path / "out"
    output.mkdir()
    with held(output, "gia-mic analyze"):
        second = analyze(str(tmp_path / "calls"), "--model", str(demo_model), "--output", str(output))
    assert second.returncode == 2 and "is being written by another run of `gia-mic analyze`" in second.stderr
    assert list(output.iterdir()) == []


def test_recordings_whose_folders_would_clash_are_refused(tmp_path):
    """Writing a recording's folder whole would remove a folder inside it; names apart only by case are one folder."""
    (tmp_path / "calls" / "monday").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    for name in ("calls/monday.wav", "calls/monday/first.wav", "other/Monday.mp3", "other/first.wav"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(ValueError, match="would be written to monday/ and monday/first/"):
        expand([str(tmp_path / "calls")])
    with pytest.raises(ValueError, match="would be written to first/ and first/"):
        expand([str(tmp_path / "calls" / "monday"), str(tmp_path / "other" / "first.wav")])
    with pytest.raises(ValueError, match="would be written to first/ and first/"):
        expand([str(tmp_path / "other" / "first.wav"), str(tmp_path / "calls" / "monday")])
    with pytest.raises(ValueError, match="would be written to monday/ and Monday/"):
        expand([str(tmp_path / "calls" / "monday.wav"), str(tmp_path / "other" / "Monday.mp3")])
    assert [r.name for r in expand([str(tmp_path / "calls" / "monday")])] == ["first"]


@needs_data
def test_lists_files_and_the_users_folders(talk, demo_model, tmp_path):
    (tmp_path / "a").mkdir()
    shutil.copy(talk["audio"], tmp_path / "a" / "talk.wav")
    listing = tmp_path / "list.txt"
    listing.write_text("# the calls\na/talk.wav\n\n")
    assert [(r.path.name, r.name) for r in expand([f"@{listing}"])] == [("talk.wav", "talk")]
    with pytest.raises(ValueError, match="would be written to talk/ and talk/"):
        expand([f"@{listing}", str(talk["audio"])])
    listing.write_text("a/missing.wav\n")
    missing = analyze(f"@{listing}", "--model", str(demo_model), "--output", str(tmp_path / "out"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: @") and "line 1" in missing.stderr
    no_output = analyze(str(tmp_path / "a"), "--model", str(demo_model))
    assert no_output.returncode == 2 and "--output" in no_output.stderr
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    refused = analyze(str(tmp_path / "a"), "--model", str(demo_model), "--output", str(mine))
    assert refused.returncode == 2 and "notes.txt" in refused.stderr and (mine / "notes.txt").read_text() == "keep me"
    inside = analyze(str(tmp_path / "a"), "--model", str(demo_model), "--output", str(tmp_path / "a" / "out"))
    assert inside.returncode == 2 and "apart" in inside.stderr


def segments_of(output: Path, name: str) -> list[dict]:
    return json.loads((output / name / "timeline.json").read_text())["segments"]


@needs_data
def test_two_processes_share_the_recordings_and_equal_one(calls, demo_model, tmp_path):
    shutil.copy(calls / "first.wav", calls / "monday" / "third.wav")
    arguments = [str(calls), "--model", str(demo_model), "--no-transcribe", "--output"]
    one = analyze(*arguments, str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    two = accelerate_launch(2, GIA_MIC, "analyze", *arguments, str(tmp_path / "two"), port=29531)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("3 of 4 recordings analysed, 1 with an error") == 1, "the main process reports, once"
    rows = {Path(r["path"]).name: r for r in index(tmp_path / "two")}
    assert [Path(r["path"]).name for r in index(tmp_path / "two")] == [
        Path(r["path"]).name for r in index(tmp_path / "one")
    ]
    assert {rows[name]["process"] for name in ("first.wav", "second.mkv", "third.wav")} == {"0", "1"}, "both used"
    assert rows["broken.mp3"]["status"].startswith("error: broken.mp3")
    for name in ("first", "monday/second", "monday/third"):
        single, shared = segments_of(tmp_path / "one", name), segments_of(tmp_path / "two", name)
        assert [(s["start"], s["end"], s["label"]) for s in single] == [
            (s["start"], s["end"], s["label"]) for s in shared
        ]
        for a, b in zip(single, shared):
            assert max(abs(a["scores"][k] - b["scores"][k]) for k in a["scores"]) < 1e-5
    assert not list((tmp_path / "two").glob(".index-process*")), "each process's rows are gathered into the index"
    single = accelerate_launch(
        2, GIA_MIC, "analyze", str(calls / "first.wav"), *arguments[1:], str(tmp_path / "single"), port=29532
    )
    assert single.returncode == 0 and single.stdout.count("Wrote") == 1, "one recording: the main process alone"
    assert segments_of(tmp_path, "single") == segments_of(tmp_path / "one", "first")


def test_names_without_a_folder_of_their_own_and_work_of_unknown_size(tmp_path):
    from gia_mic.processes import balanced

    (tmp_path / "calls").mkdir()
    (tmp_path / "calls" / "...wav").write_bytes(b"")
    with pytest.raises(ValueError, match=r"\.\.\.wav: its name gives no folder of its own"):
        expand([str(tmp_path / "calls")])
    assert balanced(list("abcd"), lambda piece: 0.0, 2) == [["a", "c"], ["b", "d"]], "shared, not all to one"
