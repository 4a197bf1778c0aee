"""What a training run leaves for people to look at: a confusion matrix, training curves and a model card."""

from pathlib import Path
from typing import Any

import matplotlib


matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402


def plot_confusion_matrix(matrix: np.ndarray, names: list[str], path: Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (recall per true class) with the raw counts in each cell."""
    totals = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, totals, out=np.zeros_like(matrix, dtype=float), where=totals > 0)
    size = 1.2 + 0.7 * len(names)
    figure, axes = plt.subplots(figsize=(size + 1.5, size))
    image = axes.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    axes.set(xticks=range(len(names)), yticks=range(len(names)), xlabel="predicted", ylabel="true", title=title)
    axes.set_xticklabels(names, rotation=45, ha="right")
    axes.set_yticklabels(names)
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if normalised[row, column] > 0.5 else "black"
        axes.text(
            column, row, f"{count}\n{normalised[row, column]:.0%}", ha="center", va="center", color=colour, fontsize=8
        )
    figure.colorbar(image, ax=axes, fraction=0.046, label="recall")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


LOSS_TERMS = (
    "classification_loss",
    "invariance_loss",
    "reconstruction_loss",
    "adversarial_loss",
    "mmd_loss",
    "unimodal_loss",
    "contrastive_loss",
)


def plot_training_curves(log_history: list[dict[str, Any]], path: Path, title: str = "training") -> Path:
    """
    Left: training loss, evaluation loss and metrics against the optimiser step. Right, when the run logged them: each
    term of the loss (the task loss and the architecture's auxiliary losses, unweighted).
    """
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    evaluation = [e for e in log_history if "eval_loss" in e]
    metric_keys = [
        k for k in ("eval_ua", "eval_wa", "eval_mae", "eval_acc2_non0") if evaluation and k in evaluation[0]
    ]
    terms = [name for name in LOSS_TERMS if any(name in e for e in log_history)]
    figure, panels = plt.subplots(1, 2 if terms else 1, figsize=(12 if terms else 7, 4), squeeze=False)
    loss_axes = panels[0, 0]
    if train:
        loss_axes.plot(*zip(*train), label="train loss", color="tab:blue")
    if evaluation:
        loss_axes.plot(
            [e["step"] for e in evaluation],
            [e["eval_loss"] for e in evaluation],
            "o-",
            label="eval loss",
            color="tab:orange",
        )
    loss_axes.set(xlabel="step", ylabel="loss", title=title)
    handles, labels = loss_axes.get_legend_handles_labels()
    if metric_keys:
        metric_axes = loss_axes.twinx()
        for key, colour in zip(metric_keys, ("tab:green", "tab:red", "tab:purple", "tab:brown")):
            steps, values = [e["step"] for e in evaluation], [e[key] for e in evaluation]
            metric_axes.plot(steps, values, "s--", label=key[5:], color=colour)
        metric_axes.set_ylabel("metric")
        more_handles, more_labels = metric_axes.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    loss_axes.legend(handles, labels, loc="best")
    if terms:
        term_axes = panels[0, 1]
        for name in terms:
            points = [(e["step"], e[name]) for e in log_history if name in e]
            term_axes.plot(*zip(*points), label=name.removesuffix("_loss"))
        term_axes.set(xlabel="step", ylabel="loss term (unweighted)", title="loss terms")
        term_axes.legend(loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def architecture_description(config) -> tuple[str, str]:
    """The model card's sentence on the architecture and its line on the fusion settings, per architecture."""
    if config.model_type == "mcihn":
        return (
            "An MCIHN model (adversarial autoencoders + cross-modal gate mechanism + feature fusion; Zhang et al., "
            "arXiv 2510.24827)",
            f"latent width {config.latent_size}, {config.num_fusion_layers} fusion layer(s), loss weights: "
            f"reconstruction {config.reconstruction_weight}, adversarial {config.adversarial_weight}, MMD "
            f"{config.mmd_weight}, unimodal {config.unimodal_weight}",
        )
    if config.model_type == "miar":
        return (
            "A MIAR model (modality interaction tokens + contrastive alignment; Zhu & Yu, arXiv 2601.02414)",
            f"{config.num_interaction_layers} interaction layers, width {config.hidden_size}, contrastive weight "
            f"{config.contrastive_weight} at temperature {config.contrastive_temperature}",
        )
    return (
        "A GIA-MIC model (gated interactive attention + modality-invariant generator; He, Mi & Toda, INTERSPEECH "
        "2025, arXiv 2506.00865)",
        f"{config.num_gia_layers} GIA layers, width {config.hidden_size}, gates `{config.gate_type}`, pooling "
        f"`{config.pooling}`, invariance loss `{config.invariance_loss}` (weight {config.invariance_weight})",
    )


MODEL_INDEX_METRICS = {
    "wa": ("accuracy", "WA (accuracy)"),
    "ua": ("recall", "UA (unweighted accuracy)"),
    "weighted_f1": ("f1", "weighted F1"),
    "macro_f1": ("f1", "macro F1"),
    "mae": ("mae", "MAE"),
    "corr": ("pearsonr", "Pearson r"),
    "acc2_has0": ("accuracy", "Acc-2 (has0)"),
    "acc2_non0": ("accuracy", "Acc-2 (non0)"),
    "f1_non0": ("f1", "F1 (non0)"),
    "acc7": ("accuracy", "Acc-7"),
    "acc2": ("accuracy", "Acc-2"),  # CH-SIMS's bins
    "acc3": ("accuracy", "Acc-3"),
    "acc5": ("accuracy", "Acc-5"),
    "f1": ("f1", "F1 (2 classes, weighted)"),
}


def calibration_section(calibration: dict | None) -> str:
    """The temperatures fitted on the validation split, each with the expected calibration error it leaves."""
    if not calibration:
        return ""
    rows = "\n".join(
        f"| {key.replace('+', ' + ')} | {fit['temperature']:.3f} | {fit['ece_before']:.4f} | {fit['ece_after']:.4f} |"
        for key, fit in calibration.items()
    )
    return f"""
## Calibration

The probabilities are calibrated on validation data: the logits are divided by a temperature for each set of inputs
given (`temperatures` in `config.json`). Expected calibration error on that data (15 bins), with the target prior set
to that data's own class frequencies:

| inputs | temperature | ECE before | ECE after |
|---|---:|---:|---:|
{rows}
"""


def priors_line(config) -> str:
    """The class frequencies the outputs are corrected between (training -> target prior), when they differ."""
    target, training = config.target_prior, config.training_prior
    if target is None or training == target:
        return ""
    learned = training or dict.fromkeys(target, 1 / len(target))
    pairs = ", ".join(f"{name} {learned[name]:.3f} -> {target[name]:.3f}" for name in target)
    return (
        f"- priors: the outputs are corrected from the training sample's class frequencies to the target's: {pairs}\n"
    )


def write_model_card(output_dir: Path, config, dataset: str, results: dict, split: str | None, args) -> Path:
    """README.md with `model-index` results, so that `push_to_hub` of the folder gives a complete model page."""
    name = Path(dataset).name
    task = "regression" if config.problem_type == "regression" else "audio-classification"
    scores = results.get(split, {}) if split else {}
    metrics = [
        {"type": kind, "name": label, "value": round(float(scores[key]), 4)}
        for key, (kind, label) in MODEL_INDEX_METRICS.items()
        if key in scores
    ]
    metadata = {
        "library_name": "transformers",
        "tags": ["gia-mic", config.model_type.replace("_", "-"), "emotion-recognition", "multimodal", "custom_code"],
        "pipeline_tag": "audio-classification",
        "model-index": [
            {
                "name": output_dir.name,
                "results": [
                    {
                        "task": {"type": task, "name": "emotion recognition"},
                        "dataset": {"name": name, "type": name, "split": split},
                        "metrics": metrics,
                    }
                ],
            }
        ]
        if metrics
        else [],
    }
    labels = ", ".join(config.id2label[i] for i in range(config.num_labels)) if task != "regression" else "score"
    table = "\n".join(
        f"| {label} | {scores[key]:.4f} |" for key, (_, label) in MODEL_INDEX_METRICS.items() if key in scores
    )
    if "ece" in scores:
        table += f"\n| expected calibration error (15 bins) | {scores['ece']:.4f} |"
    architecture, fusion = architecture_description(config)
    body = f"""
# {output_dir.name}

{architecture} fine-tuned on `{name}` with the GIA-MIC package. The architecture is the package's documented
reconstruction of the paper (its equations are not public); every choice is a field of `config.json`.

- modalities: {", ".join(config.modalities)}
- labels: {labels}
- fusion: {fusion}
{priors_line(config)}- training: {args.num_train_epochs:g} epochs, learning rate {args.learning_rate:g}, batch size
  {args.per_device_train_batch_size} x {args.gradient_accumulation_steps} accumulation x {args.world_size} processes

## Results on `{split}`

| metric | value |
|---|---:|
{table}

{calibration_section(results.get("calibration"))}
![confusion matrix](confusion_matrix.png)
![training curves](training_curves.png)

## Use

```python
from transformers import AutoModelForAudioClassification, pipeline
model = AutoModelForAudioClassification.from_pretrained("<this repo>", trust_remote_code=True)
# A model with its encoders: one sample, or an emotion timeline of a whole recording.
classifier = pipeline("multimodal-emotion-recognition", model="<this repo>", trust_remote_code=True)
```
"""
    path = output_dir / "README.md"
    path.write_text(f"---\n{yaml.safe_dump(metadata, sort_keys=False)}---\n{body}", encoding="utf-8")
    return path
