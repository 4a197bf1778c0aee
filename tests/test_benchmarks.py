"""Each benchmark runs end to end at a tiny size, so they do not rot (no timing is asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import installed


ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_data_benchmark_smoke():
    output = run_benchmark(
        "data", "--scales", "0.01", "0.02", "--feature-rows", "40", "--mosei-scales", "0.01", "0.02"
    )  # the MOSEI pickle at 1-2 % of full size (full size: 12 GiB and a minute)
    assert "IEMOCAP 4class x0.01" in output and "peak RSS x0.02 / x0.01" in output
    assert "MOSEI: anonymous peak beyond the pickle x0.02 / x0.01" in output
    assert "Array2D / List(List(float32)): x" in output


def test_inference_benchmark_smoke():
    output = run_benchmark("inference", "--tiny", "--rounds", "1", "--batch-sizes", "1", "--skip-memory")
    assert "head overhead" in output and "eager / sdpa" in output and "bfloat16 / float32" in output


def test_training_benchmark_smoke(tmp_path):
    output = run_benchmark(
        "training",
        "--scale",
        "0.01",
        "--epochs",
        "1",
        "--steps",
        "1",
        "--rounds",
        "1",
        "--work",
        str(tmp_path),
        "--profile",
    )
    assert "+ width 128 (CPU recipe)" in output and "5-fold leave-one-session-out CV" in output
    assert "share of CPU time" in output


def test_peers_benchmark_smoke():
    installed("MMSA", "the benchmark extra (`make test` installs .[bench])")
    output = run_benchmark("peers", "--pairs", "mult", "--rounds", "1", "--batch-size", "2", "--skip-memory")
    assert "GIA-MIC / MulT: train step x" in output


def test_resample_benchmark_smoke():
    output = run_benchmark("resample", "--rates", "44101", "--seconds", "0.01", "--before-max-seconds", "0")
    assert "| 44101 | 0.01 | - | - |" in output


@pytest.mark.skipif(not (ROOT.parent / "shared" / "data" / "mosi").is_dir(), reason="../shared/data not found")
def test_real_data_benchmark_smoke(tmp_path):
    """The real-data pipeline (build, extract-features, train, report) on 2 % of MOSI and MELD."""
    output = run_benchmark("real_data", "--tasks", "mosi", "meld", "--fraction", "0.02", "--work", str(tmp_path))
    assert "mosi     MAE" in output and "meld" in output and "weighted F1" in output


def test_export_benchmark_smoke():
    output = run_benchmark("export", "--rounds", "1", "--batch-sizes", "1")
    assert "onnxruntime / PyTorch x" in output


def test_recordings_benchmark_smoke(demo_model, talk):
    """`talk` only for its skip: the benchmark reads RAVDESS and FER-2013 from ../shared/data."""
    output = run_benchmark("recordings", "--minutes", "0.1", "0.2", "--gaps", "1.5", "5", "--model", str(demo_model))
    assert (
        "| 0.1 min | 1.5 s | 160x120 | no | 2 | 2 |" in output
        and "| 0.2 min | 1.5 s | 160x120 | no | 4 | 4 |" in output
    )
    assert "| 0.2 min | 5 s | 160x120 | no | 2 | 2 |" in output, "longer silences: fewer clips in the same time"


def test_speech_recognition_benchmark_smoke(demo_model, talk):
    """`talk` only for its skip: the benchmark reads RAVDESS from ../shared/data."""
    output = run_benchmark("speech_recognition", "--model", str(demo_model), "--every", "720", "--examples", "1")
    assert "4 clips" in output and "speed-up x" in output and "identical transcripts" in output


def test_pipeline_batching_benchmark_smoke(demo_model, talk):
    """`talk` only for its skip: the benchmark reads MELD and RAVDESS from ../shared/data."""
    output = run_benchmark(
        "pipeline_batching", "--model", str(demo_model), "--texts", "4", "--clips", "2", "--batch-size", "2"
    )
    assert "| 4 texts |" in output and "| 2 speech clips |" in output and "one by one / batched" in output


def test_statements_benchmark_smoke(demo_model):
    output = run_benchmark("statements", "--model", str(demo_model))
    assert "plain statements neutral" in output and "emotional kept" in output
    assert "The meeting starts at ten tomorrow." in output


def test_transcription_benchmark_smoke(demo_model, talk):
    """`talk` only for its skip: the benchmark reads RAVDESS from ../shared/data."""
    output = run_benchmark("transcription", "--model", str(demo_model), "--actors", "24", "--every", "12")
    assert "| the voice alone |" in output and "| the words always used |" in output
    assert "transcription on, the default" in output and "Words always used change" in output


def test_many_recordings_benchmark_smoke(demo_model, talk):
    """`talk` only for its skip: the benchmark builds its recordings from RAVDESS and FER-2013 in ../shared/data."""
    arguments = ["--model", str(demo_model), "--recordings", "2", "--feature-actors", "1", "--no-transcribe"]
    output = run_benchmark("many_recordings", *arguments)
    assert "| analyze, 2 processes x 1 thread |" in output and "| extract-features, 2 processes |" in output
    assert "The two analyze runs give the same labels: True" in output
    assert "The two extract-features runs give the same features (within 1e-5): True" in output


def test_the_word_error_rate_by_hand():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from sample_transcript import word_error_rate, words

    assert words("Oh, hello. I didn't know!") == ["oh", "hello", "i", "didn't", "know"]
    assert word_error_rate(["a", "b", "c"], ["a", "b", "c"]) == 0.0
    assert word_error_rate(["a", "b", "c"], ["a", "x", "c", "d"]) == pytest.approx(2 / 3), "one wrong, one extra"
    assert word_error_rate(["a", "b", "c"], ["c"]) == pytest.approx(2 / 3), "two missed"
    assert word_error_rate(["a", "b"], []) == 1.0


def test_live_benchmark_smoke(demo_model, talk):
    output = run_benchmark("live", "--model", str(demo_model), "--clips", "2")
    assert output.count("utterances for 2 sentences") == 2 and "the same spans and labels: True" in output
