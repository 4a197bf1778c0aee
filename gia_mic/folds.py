"""Cross-validation folds by group (speaker, session, actor): one implementation for `gia-mic cv` and the scripts."""

from typing import Any

from datasets import Dataset


def leave_one_group_out(split: Dataset, column: str) -> list[tuple[Any, Dataset, Dataset]]:
    """
    One fold per value of `column`, in sorted order: (value, train = every row of another value, test = the rows of
    that value). Every row is tested exactly once and never trained on in its own fold (e.g. IEMOCAP's `session`: the
    5 leave-one-session-out folds, no speaker on both sides).
    """
    if column not in split.column_names:
        raise ValueError(f"Cannot form folds: no column {column!r}; the dataset has {split.column_names}.")
    groups = split[column]
    folds = []
    for value in sorted(set(groups)):
        test = [i for i, g in enumerate(groups) if g == value]
        train = [i for i, g in enumerate(groups) if g != value]
        folds.append((value, split.select(train), split.select(test)))
    return folds
