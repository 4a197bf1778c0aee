"""Run frozen encoders once over a raw dataset and save a feature-mode dataset (fast training and CV of the head)."""

import json
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import torch
from datasets import Dataset, DatasetDict, Features
from tqdm.auto import tqdm

from modeling_gia_mic import ARCHITECTURES, MultimodalForEmotionRecognition, MultimodalModel

from .folders import claim_output, write_folder
from .preparation import DEFAULT_MAX_TEXT_LENGTH, RawBatchCollator, processor_for_encoders
from .training import FEATURE_COLUMNS, RAW_COLUMNS, feature_array, load_dataset_folder


COMMAND = "gia-mic extract-features"
MEDIA_COLUMNS = {"audio", "frames", "image"}


def feature_rows(
    split: Dataset, model: MultimodalModel, collator: RawBatchCollator, batch_size: int, description: str
) -> Iterator[dict[str, Any]]:
    """
    The split's rows without media, plus each modality's encoder sequence trimmed to its real length. Rows in whose
    pictures the processor finds no face are left out (the collator names them in its `faceless`).
    """
    kept = [c for c in split.column_names if c not in MEDIA_COLUMNS]
    for start in tqdm(range(0, split.num_rows, batch_size), desc=description, unit=" batches"):
        rows = [split[i] for i in range(start, min(start + batch_size, split.num_rows))]
        if "vision" in collator.modalities:
            rows = collator.with_pictures(rows)
        if not rows:
            continue
        batch = collator(rows)
        batch.pop("labels")
        outputs = model.get_modality_features(**batch)
        for index, row in enumerate(rows):
            item = {column: row[column] for column in kept}
            for modality, (sequence, mask) in outputs.items():
                length = int(mask[index].sum())
                item[FEATURE_COLUMNS[modality]] = sequence[index, :length].float().numpy()
            yield item


def extract_features(
    dataset_path: str,
    output: str,
    encoders: dict[str, str],
    label_column: str = "label",
    batch_size: int = 16,
    overwrite: bool = False,
    architecture: str = "gia_mic",
    title: str | None = None,
    **processor_settings,
) -> DatasetDict:
    """
    Encode every split of a raw dataset with the given pretrained encoders (a Hub id or folder per modality), through
    the front end of `architecture` (the three share it, so the features serve any of them), and save a dataset whose
    `*_features` columns feed a feature-mode model (`text_feature_size` = the encoder width, ...).
    Items are prepared by the processor the model will be saved with (`processor_settings`: `GiaMicProcessor`'s;
    text cut at 128 tokens unless `max_length` is given); with `detect_faces`, rows without a face the processor
    finds are left out, counted on the console and listed in the output's `left_out.json`.
    A head trained on it can be put back on the same encoders (`attach_encoders`). `output` must lie apart from the
    dataset; it is written beside itself and swapped in at the end (an earlier output only with `overwrite`).
    """
    claim_output(
        output, COMMAND, {"--dataset": dataset_path, **{f"--{m}_encoder": e for m, e in encoders.items()}}, overwrite
    )
    dataset = load_dataset_folder(dataset_path)
    for modality in encoders:
        columns = RAW_COLUMNS[modality]
        if any(not set(columns) & set(split.column_names) for split in dataset.values()):
            raise ValueError(f"{dataset_path} has no {' or '.join(columns)} column for the {modality} encoder.")
    model = ARCHITECTURES[architecture].base_model_class.from_encoders_pretrained(**encoders).eval()
    processor = processor_for_encoders(encoders, **{"max_length": DEFAULT_MAX_TEXT_LENGTH, **processor_settings})
    splits, faceless = {}, {}
    with torch.inference_mode(), tempfile.TemporaryDirectory(prefix="gia-mic-features-") as cache:
        for name, split in dataset.items():
            collator = RawBatchCollator(
                processor, list(encoders), label_column, faceless=faceless.setdefault(name, [])
            )
            features = Features(
                {
                    **{c: f for c, f in split.features.items() if c not in MEDIA_COLUMNS},
                    **{FEATURE_COLUMNS[m]: feature_array(model.input_size(m)) for m in encoders},
                }
            )
            try:
                splits[name] = Dataset.from_generator(  # streamed to Arrow on disk: memory stays bounded
                    feature_rows,
                    features=features,
                    cache_dir=cache,
                    split=datasets.NamedSplit(name),
                    fingerprint=f"gia-mic-features-{name}-{uuid.uuid4().hex}",  # no hashing of the model
                    gen_kwargs={
                        "split": split,
                        "model": model,
                        "collator": collator,
                        "batch_size": batch_size,
                        "description": f"Encoding {title or dataset_path} ({name})",
                    },
                )
            except ValueError:
                if split.num_rows and len(collator.faceless) == split.num_rows:
                    raise ValueError(f"{dataset_path} ({name}): no face was found in any of its pictures.") from None
                raise
        for name, ids in faceless.items():
            if ids:
                print(f"{title or dataset_path} ({name}): {len(ids)} rows without a face found were left out")
        write_folder(
            output, lambda staging: save_features(staging, splits, faceless), command=COMMAND, overwrite=overwrite
        )
    return datasets.load_from_disk(output)


def save_features(folder: Path, splits: dict[str, Dataset], faceless: dict[str, list[str]]) -> None:
    DatasetDict(splits).save_to_disk(str(folder))
    if any(faceless.values()):
        (folder / "left_out.json").write_text(json.dumps({"no face found": faceless}, indent=2))


def attach_encoders(
    head: MultimodalForEmotionRecognition, encoders: dict[str, str]
) -> MultimodalForEmotionRecognition:
    """
    Put pretrained encoders (a Hub id or folder per modality) under a head trained on their cached features, giving a
    model that takes raw inputs: same architecture, fusion settings and weights, the feature sizes replaced by the
    encoders.
    """
    own_fields = [name for name in head.config_class.model_fields() if not name.endswith("_config")]
    settings = {
        name: getattr(head.config, name)
        for name in own_fields
        if not (name.endswith("_feature_size") and name.removesuffix("_feature_size") in encoders)
    }
    settings.update({f"freeze_{modality}_encoder": True for modality in encoders})
    model = type(head).from_encoders_pretrained(
        **encoders, **settings, id2label=head.config.id2label, problem_type=head.config.problem_type
    )
    missing, unexpected = model.load_state_dict(head.state_dict(), strict=False)
    foreign = [name for name in missing if not name.startswith(f"{head.base_model_prefix}.encoders.")]
    if unexpected or foreign:
        raise ValueError(f"The head does not fit these encoders: missing {foreign}, unexpected {unexpected}.")
    return model.eval()
