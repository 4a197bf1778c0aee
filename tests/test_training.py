"""Training path: multi-process data parallelism, resuming, cross-validation and cached encoder features."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from datasets import Array2D, ClassLabel, Dataset, DatasetDict, Features, List, Value
from safetensors.torch import load_file
from transformers import (
    AutoModel,
    AutoTokenizer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from gia_mic import MultimodalCollator
from gia_mic.cli import main as cli
from gia_mic.folds import leave_one_group_out
from gia_mic.training import (
    DataArguments,
    ModelArguments,
    build_model_and_collator,
    load_training_dataset,
    make_trainer,
    resume_checkpoint,
    with_length_column,
)
from modeling_gia_mic import GiaMicForEmotionRecognition


ROOT = Path(__file__).resolve().parents[1]
# No dropout and no batch-level loss term (each architecture's own are turned off), so that 2 x 4 samples and 1 x 8
# samples give the same gradient.
PER_SAMPLE_LOSSES = {
    "gia_mic": "similarity_weight=0",  # the alignment term stays: it is a mean over samples
    "mcihn": "latent_size=16,mmd_weight=0,adversarial_weight=0",  # reconstruction and unimodal terms stay
    "miar": "contrastive_weight=0",
}


def deterministic(architecture: str) -> str:
    shared = "hidden_size=32,num_attention_heads=4,intermediate_size=48,hidden_dropout=0,attention_dropout=0"
    return f"{shared},classifier_dropout=0,{PER_SAMPLE_LOSSES[architecture]}"


@pytest.fixture(scope="module")
def feature_dataset(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)

    def split(size: int) -> Dataset:
        rows = {"id": [], "text_features": [], "audio_features": [], "label": []}
        for index in range(size):
            label = int(rng.integers(3))
            text = rng.normal(size=(int(rng.integers(2, 7)), 6)).astype(np.float32)
            text[:, label] += 1.0
            rows["id"].append(f"utt{index}")
            rows["text_features"].append(text)
            rows["audio_features"].append(rng.normal(size=(int(rng.integers(3, 9)), 4)).astype(np.float32))
            rows["label"].append(label)
        features = Features(
            {
                "id": Value("string"),
                "text_features": List(List(Value("float32"))),
                "audio_features": List(List(Value("float32"))),
                "label": ClassLabel(names=["neutral", "happy", "sad"]),
            }
        )
        return Dataset.from_dict(rows, features=features)

    path = tmp_path_factory.mktemp("features") / "dataset"
    DatasetDict(train=split(64), test=split(16)).save_to_disk(str(path))
    return path


def train_command(
    dataset: Path, output: Path, batch_size: int, steps: int = 3, architecture: str = "gia_mic"
) -> list[str]:
    return [
        "train",
        "--architecture",
        architecture,
        "--dataset",
        str(dataset),
        "--output_dir",
        str(output),
        "--max_steps",
        str(steps),
        "--per_device_train_batch_size",
        str(batch_size),
        "--learning_rate",
        "1e-2",
        "--save_strategy",
        "no",
        "--seed",
        "0",
        "--config_overrides",
        deterministic(architecture),
        "--lr_scheduler_type",
        "constant",
    ]


def final_weights(output: Path) -> dict[str, torch.Tensor]:
    return load_file(str(output / "model.safetensors"))


def test_two_process_data_parallel_equals_one_process_with_the_doubled_batch(architecture, feature_dataset, tmp_path):
    launcher = tmp_path / "launch.py"
    launcher.write_text(
        "import json, sys, torch.distributed as dist\n"
        "from pathlib import Path\n"
        "from gia_mic.cli import main\n"
        "main(sys.argv[2:])\n"
        "rank, world = dist.get_rank(), dist.get_world_size()\n"
        "Path(sys.argv[1], f'rank{rank}.json').write_text(json.dumps({'rank': rank, 'world_size': world}))\n"
    )
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            "29517",
            str(launcher),
            str(tmp_path),
            *train_command(feature_dataset, tmp_path / "ddp", batch_size=4, architecture=architecture),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    reports = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("rank*.json"))]
    assert reports == [{"rank": 0, "world_size": 2}, {"rank": 1, "world_size": 2}]

    cli(train_command(feature_dataset, tmp_path / "single", batch_size=8, architecture=architecture))
    ddp, single = final_weights(tmp_path / "ddp"), final_weights(tmp_path / "single")
    set_seed(0)
    initial = build_model_and_collator(
        ModelArguments(architecture=architecture, config_overrides=deterministic(architecture)),
        DataArguments(dataset=str(feature_dataset)),
        datasets.load_from_disk(str(feature_dataset))["train"],
    )[0]
    assert set(ddp) == set(single)
    changed = 0
    for name, weight in single.items():
        torch.testing.assert_close(ddp[name], weight, atol=1e-5, rtol=0, msg=name)
        changed += not torch.equal(weight, initial.state_dict()[name])
    assert changed > len(single) // 2, "the three steps really trained"


class StopAt(TrainerCallback):
    """Ends training at a given step, as an interrupted job would (its last checkpoint is on disk)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        control.should_training_stop = state.global_step >= self.step
        return control


def run_resumable(
    architecture: str, dataset_path: Path, output: Path, stop_at: int | None = None, resume: str | None = None
):
    dataset = datasets.load_from_disk(str(dataset_path))
    set_seed(0)
    overrides = "hidden_size=32,num_attention_heads=4,intermediate_size=48,hidden_dropout=0.2"  # every loss term on
    model, collator, _ = build_model_and_collator(
        ModelArguments(architecture=architecture, config_overrides=overrides),
        DataArguments(dataset=str(dataset_path)),
        dataset["train"],
    )
    args = TrainingArguments(
        output_dir=str(output),
        max_steps=6,
        per_device_train_batch_size=8,
        learning_rate=5e-3,
        save_steps=3,
        seed=0,
        report_to="none",
        use_cpu=True,
    )
    trainer = make_trainer(model, collator, args, dataset["train"], None)
    assert trainer.args is not args and args.remove_unused_columns, "the caller's arguments are left as they were"
    if stop_at:
        trainer.add_callback(StopAt(stop_at))
    trainer.train(resume_from_checkpoint=resume_checkpoint(resume, str(output)))
    return {name: value.detach().clone() for name, value in trainer.model.state_dict().items()}


def test_resuming_from_a_checkpoint_gives_the_uninterrupted_weights(architecture, feature_dataset, tmp_path):
    uninterrupted = run_resumable(architecture, feature_dataset, tmp_path / "full")
    run_resumable(architecture, feature_dataset, tmp_path / "interrupted", stop_at=3)
    assert (tmp_path / "interrupted" / "checkpoint-3").is_dir()
    assert not (tmp_path / "interrupted" / "checkpoint-6").exists()
    resumed = run_resumable(architecture, feature_dataset, tmp_path / "interrupted", resume="true")  # the latest
    for name, weight in uninterrupted.items():
        torch.testing.assert_close(resumed[name], weight, atol=1e-6, rtol=0, msg=name)


def test_cross_validation_on_a_fixture_iemocap(iemocap_fixture, tiny_encoders, tmp_path, capsys):
    cli(
        [
            "cv",
            "--dataset",
            str(iemocap_fixture),
            "--text_encoder",
            str(tiny_encoders["text"]),
            "--audio_encoder",
            str(tiny_encoders["audio"]),
            "--fold_column",
            "session",
            "--output_dir",
            str(tmp_path / "cv"),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "4",
            "--save_strategy",
            "no",
            "--config_overrides",
            "hidden_size=32,num_attention_heads=4,intermediate_size=48",
        ]
    )
    results = json.loads((tmp_path / "cv" / "cv_results.json").read_text())
    assert list(results["folds"]) == [f"session={s}" for s in range(1, 6)]
    assert set(results["summary"]) == {"wa", "ua", "macro_f1", "weighted_f1", "ece"}
    sessions = Counter(datasets.load_from_disk(str(iemocap_fixture))["train"]["session"])
    total = sum(sessions.values())
    for session, count in sessions.items():
        fold = f"session={session}"
        assert results["rows"][fold] == {"train": total - count, "test": count}, "trained on the held-out session"
        assert np.sum(results["folds"][fold]["confusion_matrix"]) == count, "tested on exactly that session"
    wa = [results["folds"][f"session={s}"]["wa"] for s in range(1, 6)]
    assert results["summary"]["wa"]["mean"] == pytest.approx(np.mean(wa))
    assert results["summary"]["wa"]["std"] == pytest.approx(np.std(wa))
    table = (tmp_path / "cv" / "cv_results.md").read_text()
    assert table.count("| session=") == 5 and "mean ± std" in table and "mean ± std" in capsys.readouterr().out
    assert (tmp_path / "cv" / "fold_session_3" / "confusion_matrix.png").is_file()


def test_leave_one_group_out_tests_every_row_once_and_never_trains_on_it():
    """The folds `gia-mic cv` trains on: uneven groups, ids to follow each row."""
    rng = np.random.default_rng(0)
    groups = rng.choice(["s1", "s2", "s3", "s4"], size=40, p=[0.1, 0.2, 0.3, 0.4]).tolist()
    split = Dataset.from_dict({"id": [f"row{i}" for i in range(40)], "session": groups})
    folds = leave_one_group_out(split, "session")
    assert [value for value, _, _ in folds] == ["s1", "s2", "s3", "s4"]
    tested = []
    for value, train, test in folds:
        assert set(test["session"]) == {value} and value not in set(train["session"])
        assert not set(train["id"]) & set(test["id"])
        assert sorted([*train["id"], *test["id"]]) == sorted(split["id"])
        tested += list(test["id"])
    assert sorted(tested) == sorted(split["id"]), "every row is tested exactly once"
    with pytest.raises(ValueError, match="no column 'speaker'"):
        leave_one_group_out(split, "speaker")


def test_extracted_features_train_a_feature_mode_head(iemocap_fixture, tiny_encoders, tmp_path):
    output = tmp_path / "features"
    cli(
        [
            "extract-features",
            "--dataset",
            str(iemocap_fixture),
            "--output",
            str(output),
            "--text_encoder",
            str(tiny_encoders["text"]),
            "--audio_encoder",
            str(tiny_encoders["audio"]),
            "--batch_size",
            "3",
        ]
    )
    features = datasets.load_from_disk(str(output))["train"]
    raw = datasets.load_from_disk(str(iemocap_fixture))["train"]
    assert features["id"] == raw["id"] and "audio" not in features.column_names
    assert features.features["text_features"] == Array2D(shape=(None, 32), dtype="float32")
    first = np.array(features[0]["text_features"], dtype=np.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoders["text"])
    assert first.shape == (len(tokenizer(raw[0]["text"])["input_ids"]), 32)
    encoder = AutoModel.from_pretrained(tiny_encoders["text"]).eval()
    with torch.no_grad():
        expected = encoder(**tokenizer(raw[0]["text"], return_tensors="pt")).last_hidden_state[0]
    torch.testing.assert_close(torch.tensor(first), expected, atol=1e-5, rtol=1e-5)
    audio = np.array(features[0]["audio_features"])
    assert audio.shape[1] == 32 and audio.shape[0] > 10  # 1 s at 16 kHz through two stride-4 convolutions

    cli(
        [
            "train",
            "--dataset",
            str(output),
            "--output_dir",
            str(tmp_path / "head"),
            "--max_steps",
            "2",
            "--save_strategy",
            "no",
            "--config_overrides",
            "hidden_size=32,num_attention_heads=4",
        ]
    )
    config = json.loads((tmp_path / "head" / "config.json").read_text())
    assert (config["text_feature_size"], config["audio_feature_size"]) == (32, 32)
    assert "model-index" in (tmp_path / "head" / "README.md").read_text()


def test_length_column_counts_each_rows_feature_steps(feature_dataset):
    dataset = datasets.load_from_disk(str(feature_dataset))
    with_lengths = with_length_column(dataset, "length")
    for name, split in dataset.items():
        expected = [len(row["text_features"]) + len(row["audio_features"]) for row in split]
        assert with_lengths[name]["length"][:] == expected
    assert with_length_column(with_lengths, "length")["train"]["length"][:] == with_lengths["train"]["length"][:]
    as_arrays = dataset.cast(
        Features({**dataset["train"].features, "audio_features": Array2D(shape=(None, 4), dtype="float32")})
    )
    assert with_length_column(as_arrays, "length")["train"]["length"][:] == with_lengths["train"]["length"][:]


def test_group_by_length_on_a_raw_dataset_without_lengths_is_refused(iemocap_fixture):
    with pytest.raises(ValueError, match="`group_by_length` needs a 'length' column.*raw dataset"):
        with_length_column(datasets.load_from_disk(str(iemocap_fixture)), "length")


def test_training_with_length_buckets_and_bfloat16_on_cpu(feature_dataset, tmp_path):
    """The CPU recipe of BENCHMARKS.md: batches bucketed by the length column, bfloat16 autocast."""
    output = tmp_path / "bucketed"
    cli(
        [
            *train_command(feature_dataset, output, batch_size=8, steps=4),
            "--train_sampling_strategy",
            "group_by_length",
            "--bf16",
            "--use_cpu",
            "--logging_steps",
            "1",
        ]
    )
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["train_rows"] == 64 and np.sum(metrics["test"]["confusion_matrix"]) == 16
    dataset = load_training_dataset(
        DataArguments(dataset=str(feature_dataset)),
        TrainingArguments(output_dir=str(tmp_path), train_sampling_strategy="group_by_length", use_cpu=True),
    )
    set_seed(0)
    model, collator, _ = build_model_and_collator(
        ModelArguments(config_overrides=deterministic("gia_mic")),
        DataArguments(dataset=str(feature_dataset)),
        dataset["train"],
    )
    args = TrainingArguments(
        output_dir=str(tmp_path / "sampler"),
        per_device_train_batch_size=8,
        train_sampling_strategy="group_by_length",
        use_cpu=True,
        report_to="none",
    )
    trainer = make_trainer(model, collator, args, dataset["train"], None)
    batches = list(trainer.get_train_dataloader())
    assert sum(len(b["labels"]) for b in batches) == dataset["train"].num_rows  # nothing dropped
    padded_steps = sum(b["text_features"].shape[1] + b["audio_features"].shape[1] for b in batches)
    shuffled = TrainingArguments(output_dir=str(tmp_path / "shuffled"), per_device_train_batch_size=8, use_cpu=True)
    random_batches = list(make_trainer(model, collator, shuffled, dataset["train"], None).get_train_dataloader())
    assert padded_steps < sum(b["text_features"].shape[1] + b["audio_features"].shape[1] for b in random_batches)


def test_training_calibrates_on_the_validation_split_and_reports_the_ece(feature_dataset, tmp_path):
    """A temperature per set of inputs, fitted on validation, saved in the config; the test split's ECE is that of
    the saved model's probabilities, computed by hand."""
    dataset = datasets.load_from_disk(str(feature_dataset))
    splits = tmp_path / "dataset"
    DatasetDict(train=dataset["train"], validation=dataset["test"], test=dataset["test"]).save_to_disk(str(splits))
    output = tmp_path / "run"
    cli(train_command(splits, output, batch_size=8, steps=12))
    metrics = json.loads((output / "metrics.json").read_text())
    assert set(metrics["calibration"]) == {"text", "audio", "text+audio"}
    config = json.loads((output / "config.json").read_text())
    assert config["temperatures"] == {key: value["temperature"] for key, value in metrics["calibration"].items()}
    assert 0 <= config["uncertain_below"] == metrics["uncertain_below"] <= 1
    model = GiaMicForEmotionRecognition.from_pretrained(output).eval()
    rows = [dataset["test"][i] for i in range(dataset["test"].num_rows)]
    batch = MultimodalCollator(ignore_keys=("id",))(rows)
    with torch.no_grad():
        probabilities = model(**{k: v for k, v in batch.items() if k != "labels"}).logits.softmax(-1).numpy()
    labels = batch["labels"].numpy()
    confidence, correct = probabilities.max(1), probabilities.argmax(1) == labels
    by_hand = sum(
        in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
        for in_bin in (np.ceil(confidence * 15).clip(1, 15) == b for b in range(1, 16))
        if in_bin.any()
    )
    assert metrics["test"]["ece"] == pytest.approx(by_hand, abs=1e-5)
    card = (output / "README.md").read_text()
    assert f"| expected calibration error (15 bins) | {by_hand:.4f} |" in card and "## Calibration" in card
