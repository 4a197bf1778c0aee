"""
Training and evaluation from the command line on bad or unusual input: one clear line and exit status 2, never a
traceback; values parsed by their declared types; nothing written outside the output folder (issue 10.4, 6, 7, 9).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

from gia_mic.cli import main as cli
from gia_mic.overrides import parse_overrides
from gia_mic.training import label_info, resume_checkpoint
from modeling_gia_mic import GiaMicConfig


def run_cli(capsys, *args: str) -> str:
    """The one-line error of a CLI call that must fail with exit status 2."""
    capsys.readouterr()  # what came before (progress bars of the test's own set-up)
    with pytest.raises(SystemExit) as exit_info:
        cli(list(args))
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def feature_split(rows: int, label_feature=None, labels=None, groups=None) -> Dataset:
    rng = np.random.default_rng(0)
    data = {
        "id": [f"utt{i}" for i in range(rows)],
        "text_features": [rng.normal(size=(3, 4)).astype(np.float32) for _ in range(rows)],
        "label": labels if labels is not None else [i % 2 for i in range(rows)],
    }
    features = {
        "id": Value("string"),
        "text_features": List(List(Value("float32"))),
        "label": label_feature or ClassLabel(names=["a", "b"]),
    }
    if groups is not None:
        data["group"], features["group"] = groups, Value("string")
    return Dataset.from_dict(data, features=Features(features))


TRAIN = ["--max_steps", "1", "--per_device_train_batch_size", "2", "--save_strategy", "no", "--use_cpu", "true"]


def test_config_overrides_are_parsed_by_each_fields_type():
    overrides = parse_overrides(
        "gate_type=none,invariance_loss=none,hidden_act=tanh,class_weights=[1,2,3,4],hidden_size=64", GiaMicConfig
    )
    assert overrides == {
        "gate_type": "none",
        "invariance_loss": "none",
        "hidden_act": "tanh",
        "class_weights": [1.0, 2.0, 3.0, 4.0],
        "hidden_size": 64,
    }
    assert parse_overrides("text_feature_size=none,freeze_text_encoder=false", GiaMicConfig) == {
        "text_feature_size": None,
        "freeze_text_encoder": False,
    }
    config = GiaMicConfig(text_feature_size=4, num_labels=4, **overrides)
    assert config.class_weights == [1.0, 2.0, 3.0, 4.0] and config.gate_type == "none"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hidden_size=abc", "hidden_size='abc' is not a whole number"),
        ("gate_type=softmax", "gate_type='softmax' is not one of elementwise, scalar, none"),
        ("class_weights=1", "class_weights='1' is not a list of numbers"),
        ("modality_dropout=lots", "modality_dropout='lots' is not a finite number"),
        ("hidden", "'hidden' is not FIELD=VALUE"),
        ("hiden_size=3", "'hiden_size' is not a GiaMicConfig field"),
    ],
)
def test_a_bad_override_names_field_value_and_type(tmp_path, capsys, text, message):
    DatasetDict(train=feature_split(4)).save_to_disk(str(tmp_path / "data"))
    line = run_cli(
        capsys,
        "train",
        "--dataset",
        str(tmp_path / "data"),
        "--output_dir",
        str(tmp_path / "run"),
        "--config_overrides",
        text,
        *TRAIN,
    )
    assert message in line


def test_a_fold_value_cannot_write_outside_the_output_folder(tmp_path, capsys):
    groups = ["../../../../ESCAPED", "s1", "s2", "s1"]
    DatasetDict(train=feature_split(4, groups=groups)).save_to_disk(str(tmp_path / "data"))
    output = tmp_path / "deep" / "er" / "cv"
    line = run_cli(
        capsys,
        "cv",
        "--dataset",
        str(tmp_path / "data"),
        "--fold_column",
        "group",
        "--output_dir",
        str(output),
        *TRAIN,
    )
    assert "fold value '../../../../ESCAPED' of --fold_column" in line and "leads outside" in line
    assert not any(p.name.startswith("ESCAPED") for p in tmp_path.rglob("*")), "nothing written"
    assert not output.exists(), "refused before any fold was trained"


def test_plain_integer_labels_need_a_problem_type(tmp_path, capsys):
    split = feature_split(4, label_feature=Value("int64"), labels=[0, 1, 2, 1])
    with pytest.raises(ValueError, match="plain integers .* pass --problem_type single_label_classification"):
        label_info(split, "label")
    assert label_info(split, "label", "single_label_classification")["num_labels"] == 3
    assert label_info(split, "label", "regression") == {"num_labels": 1, "problem_type": "regression"}
    DatasetDict(train=split).save_to_disk(str(tmp_path / "data"))
    line = run_cli(capsys, "train", "--dataset", str(tmp_path / "data"), "--output_dir", str(tmp_path / "run"), *TRAIN)
    assert "--problem_type" in line
    cli(
        [
            "train",
            "--dataset",
            str(tmp_path / "data"),
            "--output_dir",
            str(tmp_path / "run"),
            "--problem_type",
            "regression",
            *TRAIN,
        ]
    )
    assert json.loads((tmp_path / "run" / "config.json").read_text())["problem_type"] == "regression"


def test_a_nan_regression_label_is_named_by_row_before_training(tmp_path, capsys):
    split = feature_split(4, label_feature=Value("float32"), labels=[0.5, float("nan"), -1.0, 2.0])
    DatasetDict(train=split).save_to_disk(str(tmp_path / "data"))
    line = run_cli(capsys, "train", "--dataset", str(tmp_path / "data"), "--output_dir", str(tmp_path / "run"), *TRAIN)
    assert "Split 'train': 1 row(s) have a 'label' that is not a finite number, e.g. row 'utt1'" in line
    assert not (tmp_path / "run").exists()


def test_a_plain_dataset_folder_gets_a_short_clear_error(tmp_path, capsys):
    feature_split(40).save_to_disk(str(tmp_path / "plain"))
    line = run_cli(
        capsys, "train", "--dataset", str(tmp_path / "plain"), "--output_dir", str(tmp_path / "run"), *TRAIN
    )
    assert "holds a single Dataset (40 rows), not splits" in line and len(line) < 300
    line = run_cli(capsys, "evaluate", "--model", str(tmp_path), "--dataset", str(tmp_path / "missing"))
    assert "Dataset folder" in line and "not found" in line


def test_resume_from_checkpoint_true_means_the_latest_and_nothing_else_is_taken_on_trust(tmp_path):
    assert resume_checkpoint(None, str(tmp_path)) is None and resume_checkpoint("False", str(tmp_path)) is None
    with pytest.raises(ValueError, match="no checkpoint-N folder"):
        resume_checkpoint("True", str(tmp_path))
    for step in (3, 12):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert resume_checkpoint("True", str(tmp_path)) == str(tmp_path / "checkpoint-12")
    with pytest.raises(ValueError, match="is not a checkpoint folder"):
        resume_checkpoint("checkpoint-12", str(tmp_path))  # relative to where the user stands, not output_dir


def test_evaluate_works_on_every_folder_train_wrote(iemocap_fixture, tiny_encoders, tmp_path):
    """A text-only model trained on a text + audio dataset, and each of its checkpoints, evaluate as they are."""
    output = tmp_path / "run"
    cli(
        [
            "train",
            "--dataset",
            str(iemocap_fixture),
            "--text_encoder",
            str(tiny_encoders["text"]),
            "--modalities",
            "text",
            "--output_dir",
            str(output),
            "--max_steps",
            "2",
            "--save_steps",
            "1",
            "--per_device_train_batch_size",
            "4",
            "--use_cpu",
            "true",
            "--test_split",
            "train",
        ]
    )
    rows = 10  # the fixture's 4-class utterances
    written = sorted(output.rglob("*"))
    for folder in (output / "checkpoint-1", output / "checkpoint-2", output):
        assert (folder / "tokenizer_config.json").is_file()
        metrics = _evaluate(folder, iemocap_fixture)
        assert np.sum(metrics["confusion_matrix"]) == rows
    assert sorted(output.rglob("*")) == written, "evaluate writes nothing beside the model (no eval/ folder)"
    final = json.loads((output / "metrics.json").read_text())["train"]
    assert _evaluate(output, iemocap_fixture)["confusion_matrix"] == final["confusion_matrix"]


def _evaluate(model: Path, dataset: Path) -> dict:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        cli(["evaluate", "--model", str(model), "--dataset", str(dataset), "--split", "train"])
    return json.loads(buffer.getvalue())
