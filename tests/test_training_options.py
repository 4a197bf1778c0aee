"""What the README promises of `gia-mic train`, each checked against its definition (issue 15.4)."""

import json
from pathlib import Path

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value
from PIL import Image
from safetensors.torch import load_file

from gia_mic.cli import main as cli


SMALL = "hidden_size=16,num_attention_heads=2,intermediate_size=32"


def feature_dataset(path: Path, regression: bool = False, class_sizes=(30, 10, 4)) -> Path:
    """Text features that carry the label (so training has something to find), with an unbalanced class mix."""
    rng = np.random.default_rng(0)

    def split(sizes) -> Dataset:
        labels = [label for label, size in enumerate(sizes) for _ in range(size)]
        rows = {"id": [], "text_features": [], "label": []}
        for index, label in enumerate(labels):
            features = rng.normal(size=(4, 6)).astype(np.float32)
            features[:, label] += 1.5
            rows["id"].append(f"utt{index}")
            rows["text_features"].append(features)
            rows["label"].append(float(label) - 1.0 if regression else label)
        label_type = Value("float32") if regression else ClassLabel(names=["neutral", "happy", "sad"])
        features = Features(
            {"id": Value("string"), "text_features": List(List(Value("float32"))), "label": label_type}
        )
        return Dataset.from_dict(rows, features=features)

    DatasetDict(train=split(class_sizes), validation=split((6, 6, 6)), test=split((5, 5, 5))).save_to_disk(str(path))
    return path


def train(dataset: Path, output: Path, *extra: str) -> None:
    cli(
        [
            "train",
            "--dataset",
            str(dataset),
            "--output_dir",
            str(output),
            "--per_device_train_batch_size",
            "8",
            "--learning_rate",
            "5e-3",
            "--seed",
            "0",
            "--use_cpu",
            "true",
            "--config_overrides",
            SMALL,
            *extra,
        ]
    )


EVERY_STEP = ["--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2"]


@pytest.mark.parametrize(("regression", "metric", "best"), [(False, "eval_ua", max), (True, "eval_mae", min)])
def test_the_best_checkpoint_is_chosen_by_ua_or_mae(tmp_path, regression, metric, best):
    dataset = feature_dataset(tmp_path / "data", regression=regression)
    output = tmp_path / "run"
    train(dataset, output, "--max_steps", "12", *EVERY_STEP, "--load_best_model_at_end")
    state = json.loads((output / "checkpoint-12" / "trainer_state.json").read_text())
    evaluations = [(entry["step"], entry[metric]) for entry in state["log_history"] if metric in entry]
    assert [step for step, _ in evaluations] == [2, 4, 6, 8, 10, 12]
    best_value = best(value for _, value in evaluations)
    best_step = next(step for step, value in evaluations if value == best_value)  # the first of equals is kept
    assert state["best_metric"] == pytest.approx(best_value)
    assert state["best_model_checkpoint"].endswith(f"checkpoint-{best_step}")
    final = load_file(str(output / "model.safetensors"))
    chosen = load_file(str(output / f"checkpoint-{best_step}" / "model.safetensors"))
    assert all(np.array_equal(final[name].numpy(), chosen[name].numpy()) for name in final), (
        "the best is what is saved"
    )


def test_balanced_class_weights_are_the_inverse_class_frequencies(tmp_path):
    dataset = feature_dataset(tmp_path / "data", class_sizes=(30, 10, 4))
    train(dataset, tmp_path / "run", "--max_steps", "1", "--save_strategy", "no", "--balanced_class_weights", "true")
    weights = json.loads((tmp_path / "run" / "config.json").read_text())["class_weights"]
    assert weights == pytest.approx([44 / (3 * 30), 44 / (3 * 10), 44 / (3 * 4)])


@pytest.mark.parametrize(
    ("extra", "training", "target"),
    [
        ((), (30, 10, 4), (30, 10, 4)),  # nothing to correct: the sample is the corpus
        (("--balanced_class_weights", "true"), (1, 1, 1), (30, 10, 4)),  # balanced learning, the corpus's priors
        (("--target_prior", "uniform"), (30, 10, 4), (1, 1, 1)),
        (
            ("--balanced_class_weights", "true", "--target_prior", "neutral=0.5, happy=0.3,sad=0.2"),
            (1, 1, 1),
            (5, 3, 2),
        ),
    ],
)
def test_training_records_the_priors_the_outputs_are_corrected_between(tmp_path, extra, training, target):
    """The training sample's class frequencies after the loss's class weights, and the target's, in the config."""
    dataset = feature_dataset(tmp_path / "data", class_sizes=(30, 10, 4))
    train(dataset, tmp_path / "run", "--max_steps", "1", "--save_strategy", "no", *extra)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    names = ["neutral", "happy", "sad"]
    assert [config["training_prior"][n] for n in names] == pytest.approx(np.divide(training, sum(training)))
    assert [config["target_prior"][n] for n in names] == pytest.approx(np.divide(target, sum(target)))
    card = (tmp_path / "run" / "README.md").read_text()
    assert ("- priors: the outputs are corrected" in card) == (training != target), "the card says when they differ"


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("neutral=1,happy=1", "no frequency for ['sad']"),
        ("neutral=1,happy=1,sad=0", "'sad=0'"),
        ("balanced", "'balanced'"),
    ],
)
def test_a_bad_target_prior_is_one_line_before_training(tmp_path, capsys, value, named):
    dataset = feature_dataset(tmp_path / "data")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train(dataset, tmp_path / "run", "--max_steps", "1", "--target_prior", value)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: --target_prior") and named in error[0], error
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_early_stopping_stops_when_the_metric_stops_improving(tmp_path):
    dataset = feature_dataset(tmp_path / "data")
    train(
        dataset,
        tmp_path / "run",
        *("--max_steps", "40", *EVERY_STEP, "--load_best_model_at_end", "--early_stopping_patience", "2"),
        *("--learning_rate", "0"),  # nothing can improve after the first evaluation
    )
    state = json.loads((tmp_path / "run" / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6, "evaluations at steps 2, 4, 6: two without improvement, then stop"
    assert not (tmp_path / "run" / "checkpoint-8").exists()


def test_every_run_writes_its_curves_matrix_card_and_metrics(tmp_path):
    dataset = feature_dataset(tmp_path / "data")
    output = tmp_path / "run"
    train(
        dataset, output, "--max_steps", "6", "--save_strategy", "no", "--eval_strategy", "steps", "--eval_steps", "3"
    )
    for name in ("training_curves.png", "confusion_matrix.png"):
        with Image.open(output / name) as image:
            assert image.size[0] > 300 and image.size[1] > 200
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["train_rows"] == 44 and np.sum(metrics["test"]["confusion_matrix"]) == 15
    card = (output / "README.md").read_text()
    assert "model-index" in card and f"| UA (unweighted accuracy) | {metrics['test']['ua']:.4f} |" in card


def test_modalities_restricts_the_model_to_those_given(tmp_path):
    rng = np.random.default_rng(0)
    rows = {
        "text_features": [rng.normal(size=(3, 6)).astype(np.float32) for _ in range(8)],
        "audio_features": [rng.normal(size=(5, 4)).astype(np.float32) for _ in range(8)],
        "label": [i % 2 for i in range(8)],
    }
    features = Features(
        {
            "text_features": List(List(Value("float32"))),
            "audio_features": List(List(Value("float32"))),
            "label": ClassLabel(names=["a", "b"]),
        }
    )
    DatasetDict(train=Dataset.from_dict(rows, features=features)).save_to_disk(str(tmp_path / "data"))
    train(tmp_path / "data", tmp_path / "run", "--max_steps", "1", "--save_strategy", "no", "--modalities", "audio")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["audio_feature_size"] == 4 and config["text_feature_size"] is None
