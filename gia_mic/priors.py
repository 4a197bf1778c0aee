"""
The class priors a classifier is trained and served with: the frequencies its training sample showed it (the label
counts, reweighted by the loss's class weights) and the frequencies it is meant for (`--target_prior`; by default the
training split's own), recorded in the config as `training_prior` / `target_prior`, whose logit adjustment corrects
the one to the other. A model trained with class-balanced weights then answers with the corpus's priors, not the
uniform one its loss saw.
"""

from collections.abc import Sequence

import numpy as np


def label_counts(labels: Sequence[int], num_labels: int) -> np.ndarray:
    """Items per class index (labels out of range are left to the label check, which names their rows)."""
    values = np.asarray(labels, dtype=np.float64)
    valid = values[(values >= 0) & (values < num_labels) & (values == np.round(values))].astype(int)
    return np.bincount(valid, minlength=num_labels).astype(float)


def parse_target_prior(text: str, names: Sequence[str]) -> dict[str, float]:
    """`uniform`, or `label=frequency,...` naming every label once (any positive numbers: they are normalised)."""
    if text.strip() == "uniform":
        return {name: 1.0 for name in names}
    prior = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            frequency = float(value) if sep else float("nan")
        except ValueError:
            frequency = float("nan")
        if name not in names or name in prior or not (np.isfinite(frequency) and frequency > 0):
            raise ValueError(
                f"--target_prior {text!r}: expected 'uniform' or label=frequency for each of {list(names)} once, "
                f"each frequency positive; {part.strip()!r} is not."
            )
        prior[name] = frequency
    missing = [name for name in names if name not in prior]
    if missing:
        raise ValueError(f"--target_prior {text!r}: no frequency for {missing}.")
    return prior


def class_priors(
    counts: np.ndarray, names: Sequence[str], class_weights: Sequence[float] | None, target: str | None
) -> dict[str, dict[str, float]]:
    """
    The config's `training_prior` and `target_prior` for a training split with these label `counts`; none when a
    class has no training item and no target is given (its prior would be 0: no adjustment is defined).
    """
    weights = np.ones(len(counts)) if class_weights is None else np.asarray(class_weights, dtype=np.float64)
    learned = counts * weights
    if (learned <= 0).any():
        if target is None:
            return {}
        absent = [name for name, value in zip(names, learned) if value <= 0]
        raise ValueError(f"--target_prior: the training split has no item (or a class weight of 0) for {absent}.")
    wanted = parse_target_prior(target, names) if target is not None else dict(zip(names, counts.tolist()))
    return {"training_prior": dict(zip(names, learned.tolist())), "target_prior": wanted}
