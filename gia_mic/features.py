"""Run frozen encoders once over a raw dataset and save a feature-mode dataset (fast training and CV of the head)."""

import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import datasets
import torch
from accelerate.utils import broadcast_object_list
from datasets import Dataset, DatasetDict, Features
from tqdm.auto import tqdm

from modeling_gia_mic import ARCHITECTURES, MultimodalForEmotionRecognition, MultimodalModel

from .folders import MARKER, UnsafePathError, claim_output, held, read_marker, remove, write_folder, write_marker
from .preparation import DEFAULT_MAX_TEXT_LENGTH, RawBatchCollator, processor_for_encoders
from .processes import balanced, processes
from .training import FEATURE_COLUMNS, RAW_COLUMNS, feature_array, load_dataset_folder


COMMAND = "gia-mic extract-features"
SHARDS_COMMAND = "gia-mic extract-features (shards)"
SETTINGS = "settings.json"
LEFT_OUT = "left_out.json"
MEDIA_COLUMNS = {"audio", "frames", "image"}
DEFAULT_SHARD_ROWS = 512


@dataclass(frozen=True)
class Shard:
    """Rows `start` to `stop` of a split: the unit the processes share and a killed run resumes from."""

    split: str
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"{self.split}-{self.start:010d}"

    @property
    def rows(self) -> int:
        return self.stop - self.start


def extract_features(
    dataset_path: str,
    output: str,
    encoders: dict[str, str],
    label_column: str = "label",
    batch_size: int = 16,
    overwrite: bool = False,
    architecture: str = "gia_mic",
    title: str | None = None,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    verbose: bool = False,
    **processor_settings,
) -> DatasetDict | None:
    """
    Encode every split of a raw dataset with the given pretrained encoders (a Hub id or folder per modality), through
    the front end of `architecture` (the three share it, so the features serve any of them), and save a dataset whose
    `*_features` columns feed a feature-mode model (`text_feature_size` = the encoder width, ...).
    Items are prepared by the processor the model will be saved with (`processor_settings`: `GiaMicProcessor`'s;
    text cut at 128 tokens unless `max_length` is given); with `detect_faces`, rows without a face the processor
    finds are left out, counted on the console and listed in the output's `left_out.json`.
    A head trained on it can be put back on the same encoders (`attach_encoders`). `output` must lie apart from the
    dataset; it is written beside itself and swapped in at the end (an earlier output only with `overwrite`).

    The rows are encoded in shards of `shard_rows`, each saved whole in `.<output>.shards/` beside the output: under
    `accelerate launch` the processes share the shards (each on its own device), and a rerun after a kill encodes
    only the shards not yet saved (`verbose`: each process says which shards it encoded). The main process puts them
    together in the dataset's row order, returns the dataset (the others return None) and removes the shards.
    """
    state = processes()
    inputs = {"--dataset": dataset_path, **{f"--{m}_encoder": e for m, e in encoders.items()}}
    claim_output(output, COMMAND, inputs, overwrite)
    dataset = load_dataset_folder(dataset_path)
    for modality in encoders:
        columns = RAW_COLUMNS[modality]
        if any(not set(columns) & set(split.column_names) for split in dataset.values()):
            raise ValueError(f"{dataset_path} has no {' or '.join(columns)} column for the {modality} encoder.")
    settings = {
        "dataset": os.path.abspath(dataset_path),
        "rows": {name: split._fingerprint for name, split in dataset.items()},
        "encoders": {m: os.path.abspath(e) if os.path.exists(e) else e for m, e in encoders.items()},
        "label_column": label_column,
        "architecture": architecture,
        "processor": processor_settings,
        "shard_rows": shard_rows,
    }
    shards_folder = Path(os.path.abspath(output)).parent / f".{Path(os.path.abspath(output)).name}.shards"
    if state.is_main_process:
        check_shards_folder(shards_folder)
    with held(shards_folder, COMMAND) if state.is_main_process else nullcontext():
        if state.is_main_process:
            reset_shards_folder(shards_folder, settings)
        shards = [
            Shard(name, start, min(start + shard_rows, split.num_rows))
            for name, split in dataset.items()
            for start in range(0, split.num_rows, shard_rows)
        ]
        if state.is_main_process:
            pending = [shard for shard in shards if not saved(shards_folder, shard)]
            if len(pending) < len(shards):
                print(f"{len(shards) - len(pending)} of {len(shards)} shards were encoded by an earlier run: kept.")
        (pending,) = broadcast_object_list([pending if state.is_main_process else None])  # one list for all
        model = ARCHITECTURES[architecture].base_model_class.from_encoders_pretrained(**encoders).eval()
        model.to(state.device)
        processor = processor_for_encoders(encoders, **{"max_length": DEFAULT_MAX_TEXT_LENGTH, **processor_settings})
        collator = RawBatchCollator(processor, list(encoders), label_column)
        progress = RowsProgress(pending, shards_folder, f"Encoding {title or dataset_path}", state.is_main_process)
        for shard in balanced(pending, lambda shard: shard.rows, state.num_processes)[state.process_index]:
            encode_shard(shards_folder, shard, dataset[shard.split], model, collator, batch_size, progress)
            if verbose:
                said = f"process {state.process_index}: {shard.split} rows {shard.start}-{shard.stop - 1} encoded\n"
                sys.stdout.write(said)  # the line and its end in one write: another process's cannot come between
                sys.stdout.flush()
        progress.close()
        state.wait_for_everyone()
        if not state.is_main_process:
            return None
        put_together(shards_folder, shards, dataset, model, encoders, output, overwrite, title or dataset_path)
        for entry in shards_folder.iterdir():  # the marker last: a kill midway leaves a folder known as ours
            if entry.name != MARKER:
                remove(entry)
        shutil.rmtree(shards_folder)
    return datasets.load_from_disk(output)


def put_together(
    folder: Path,
    shards: list[Shard],
    dataset: DatasetDict,
    model: MultimodalModel,
    encoders: dict[str, str],
    output: str,
    overwrite: bool,
    title: str,
) -> None:
    """The shards joined split by split in row order and saved as `output`, with the rows left out named."""
    with quiet_datasets():
        splits = {
            name: gathered(folder, shards, name, feature_columns(split, model, encoders))
            for name, split in dataset.items()
        }
    faceless = {name: left_out(folder, shards, name) for name in dataset}
    for name, ids in faceless.items():
        if ids and len(ids) == dataset[name].num_rows:
            raise ValueError(f"{title} ({name}): no face was found in any of its pictures.")
        if ids:
            print(f"{title} ({name}): {len(ids)} rows without a face found were left out")
    with quiet_datasets():
        write_folder(
            output, lambda staging: save_features(staging, splits, faceless), command=COMMAND, overwrite=overwrite
        )


def feature_columns(split: Dataset, model: MultimodalModel, modalities: Iterable[str]) -> Features:
    """The split's columns without media, plus one sequence of encoder vectors per modality."""
    return Features(
        {
            **{c: f for c, f in split.features.items() if c not in MEDIA_COLUMNS},
            **{FEATURE_COLUMNS[m]: feature_array(model.input_size(m)) for m in modalities},
        }
    )


def check_shards_folder(folder: Path) -> None:
    """
    Where the shards go: free, or a folder of this command's shards (marked, or whatever a kill left of one: its
    settings, saved shards and half-written ones); anything else is left untouched.
    """
    if folder.is_symlink() or folder.exists() and not folder.is_dir():
        raise UnsafePathError(f"{folder} is in the way of the output's shards; it is left untouched: move it.")
    if not folder.is_dir() or read_marker(folder).get("command") == SHARDS_COMMAND:
        return
    stray = next((entry for entry in folder.iterdir() if not shards_entry(entry)), None)
    if stray is not None:
        raise UnsafePathError(
            f"{folder} is in the way of the output's shards and holds {stray.name}, which {COMMAND} did not write; "
            "it is left untouched: move it, or choose another output."
        )


def shards_entry(entry: Path) -> bool:
    """An entry of the shards folder this command writes: its marker or settings, a saved or half-written shard."""
    own_file = entry.name in (SETTINGS, MARKER) and entry.is_file() and not entry.is_symlink()
    return own_file or ".partial-" in entry.name or read_marker(entry).get("command") == COMMAND


def reset_shards_folder(folder: Path, settings: dict) -> None:
    """
    (Checked and held.) The shards of an earlier run with the same settings are kept (a shard a kill left
    half-written is cleared); those of other settings are removed. The marker is written first and removed last, so
    a kill at any moment leaves a folder the next run knows as its own.
    """
    try:
        earlier = json.loads((folder / SETTINGS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        earlier = None
    same = earlier == json.loads(json.dumps(settings))
    if not same:
        write_marker(folder, SHARDS_COMMAND)
    for entry in list(folder.iterdir()):
        if entry.name != MARKER and (not same or ".partial-" in entry.name):
            remove(entry)
    if not same:
        (folder / SETTINGS).write_text(json.dumps(settings, indent=1), encoding="utf-8")


def encode_shard(
    folder: Path,
    shard: Shard,
    split: Dataset,
    model: MultimodalModel,
    collator: RawBatchCollator,
    batch_size: int,
    progress: "RowsProgress",
) -> None:
    """One shard's feature rows saved whole in `folder` (streamed through Arrow: memory stays bounded), with the ids of
    its rows without a face."""
    rows, features = split.select(range(shard.start, shard.stop)), feature_columns(split, model, collator.modalities)
    collator = replace(collator, faceless=[])

    def write(staging: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="gia-mic-features-") as cache, torch.inference_mode():
            try:
                encoded = Dataset.from_generator(
                    feature_rows,
                    features=features,
                    cache_dir=cache,
                    fingerprint=f"gia-mic-features-{uuid.uuid4().hex}",  # no hashing of the model
                    gen_kwargs={
                        "split": rows,
                        "model": model,
                        "collator": collator,
                        "batch_size": batch_size,
                        "advance": progress.advance,
                    },
                )
            except ValueError:
                if len(collator.faceless) != rows.num_rows:
                    raise
                encoded = Dataset.from_list([], features=features)  # no face in any of the shard's pictures
            encoded.save_to_disk(str(staging))
        (staging / LEFT_OUT).write_text(json.dumps(collator.faceless), encoding="utf-8")

    with quiet_datasets():
        write_folder(folder / shard.name, write, command=COMMAND, overwrite=False)
    progress.shard_done()


def feature_rows(
    split: Dataset, model: MultimodalModel, collator: RawBatchCollator, batch_size: int, advance: Callable[[int], None]
) -> Iterator[dict[str, Any]]:
    """
    The split's rows without media, plus each modality's encoder sequence trimmed to its real length. Rows in whose
    pictures the processor finds no face are left out (the collator names them in its `faceless`).
    """
    kept = [c for c in split.column_names if c not in MEDIA_COLUMNS]
    for start in range(0, split.num_rows, batch_size):
        rows = [split[i] for i in range(start, min(start + batch_size, split.num_rows))]
        advance(len(rows))
        if "vision" in collator.modalities:
            rows = collator.with_pictures(rows)
        if not rows:
            continue
        batch = {name: value.to(model.device) for name, value in collator(rows).items() if name != "labels"}
        outputs = model.get_modality_features(**batch)
        for index, row in enumerate(rows):
            item = {column: row[column] for column in kept}
            for modality, (sequence, mask) in outputs.items():
                length = int(mask[index].sum())
                item[FEATURE_COLUMNS[modality]] = sequence[index, :length].float().cpu().numpy()
            yield item


def gathered(folder: Path, shards: list[Shard], split: str, features: Features) -> Dataset:
    """A split's shards put together in row order."""
    parts = [datasets.load_from_disk(str(folder / s.name)) for s in shards if s.split == split]
    joined = datasets.concatenate_datasets(parts) if parts else Dataset.from_list([], features=features)
    return Dataset(joined.data, info=joined.info, split=datasets.NamedSplit(split))


def left_out(folder: Path, shards: list[Shard], split: str) -> list[str]:
    return [i for s in shards if s.split == split for i in json.loads((folder / s.name / LEFT_OUT).read_text())]


class RowsProgress:
    """One bar over the rows every process encodes, drawn by the main process: rows, rate, shards saved."""

    def __init__(self, pending: list[Shard], folder: Path, description: str, main: bool):
        self.unsaved, self.folder, self.main = list(pending), folder, main
        self.own = self.own_saved = self.saved_rows = 0
        self.checked = 0.0
        self.bar = tqdm(total=sum(s.rows for s in pending), desc=description, unit=" rows", disable=not main)

    def advance(self, rows: int) -> None:
        """Rows this process has taken; the bar counts them with the shards saved so far (looked for once a second)."""
        self.own += rows
        if not self.main:
            return
        if time.monotonic() - self.checked >= 1.0:
            self.checked = time.monotonic()
            newly = [shard for shard in self.unsaved if saved(self.folder, shard)]
            self.saved_rows += sum(shard.rows for shard in newly)
            self.unsaved = [shard for shard in self.unsaved if shard not in newly]
        self.bar.update(max(self.own - self.own_saved + self.saved_rows, self.bar.n) - self.bar.n)

    def shard_done(self) -> None:
        self.own_saved = self.own

    def close(self) -> None:
        self.bar.close()


def saved(folder: Path, shard: Shard) -> bool:
    """Whether the shard is saved whole in the shards folder (put in place by `write_folder`, marker and all)."""
    return read_marker(folder / shard.name).get("command") == COMMAND


@contextmanager
def quiet_datasets() -> Iterator[None]:
    """`datasets`' own bars (writing, saving, joining) off: the one bar is ours."""
    disabled = datasets.utils.are_progress_bars_disabled()
    datasets.utils.disable_progress_bars()
    try:
        yield
    finally:
        if not disabled:
            datasets.utils.enable_progress_bars()


def save_features(folder: Path, splits: dict[str, Dataset], faceless: dict[str, list[str]]) -> None:
    DatasetDict(splits).save_to_disk(str(folder))
    if any(faceless.values()):
        (folder / LEFT_OUT).write_text(json.dumps({"no face found": faceless}, indent=2))


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
