"""
Publishing to the Hugging Face Hub: a model folder, a dataset built by `dataset_scripts`, and the demo Space.

    gia-mic push model   --folder runs/iemocap --repo me/gia-mic-iemocap [--public] [--dry-run OUT]
    gia-mic push dataset --folder data/iemocap --repo me/iemocap        [--public] [--dry-run OUT]
    gia-mic push space   --repo me/gia-mic-demo --model-repo me/gia-mic-starter  [--dry-run OUT]

`--dry-run OUT` writes the exact folder that would be uploaded and lists its files; nothing is sent. Without a token
the command stops before anything is written or uploaded. Repositories are private unless `--public`.
"""

import json
import shutil
import tempfile
import wave
from pathlib import Path

from .folders import MARKER, claim_output, write_folder


ROOT = Path(__file__).resolve().parents[1]
SPACE_SOURCE = ROOT / "spaces_demo"
MODEL_FILES = ("config.json", "model.safetensors")


class PublishError(ValueError):
    """A folder that cannot be published as asked; the message says what is missing."""


def require_hub_token() -> str:
    """The Hub token, checked before anything is built, written or uploaded."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise PublishError(
            "Pushing to the Hub needs a token: run `hf auth login` or set HF_TOKEN. Nothing was uploaded."
        )
    return token


def model_upload(folder: Path) -> list[Path]:
    """
    The files of a saved GIA-MIC, MCIHN or MIAR folder (with the remote code its `auto_map` and `custom_pipelines`
    name, processor, card, plots, `asr/` and `vad/`).
    """
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if not missing:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        references = [*(config.get("auto_map") or {}).values()]
        references += [task["impl"] for task in (config.get("custom_pipelines") or {}).values()]
        code = {f"{reference.split('.')[0]}.py" for reference in references}
        missing = sorted(name for name in code if not (folder / name).is_file()) if code else ["auto_map in config"]
    if missing:
        raise PublishError(f"{folder} is not a saved GIA-MIC, MCIHN or MIAR model: it lacks {', '.join(missing)}.")
    return [
        path
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and path.name != "training_args.bin"  # a pickle of local paths, not part of a model
        and not any(part.startswith("checkpoint-") for part in path.relative_to(folder).parts)
    ]


def dataset_upload(folder: Path) -> list[Path]:
    """The Parquet files and card of a `dataset_scripts` build."""
    files = sorted((folder / "data").glob("*.parquet"))
    if not files or not (folder / "README.md").is_file():
        raise PublishError(f"{folder} is not a dataset_scripts build: it needs data/*.parquet and README.md.")
    return [*files, folder / "README.md"]


def copy_files(files: list[Path], base: Path, target: Path) -> None:
    for path in files:
        (target / path.relative_to(base)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / path.relative_to(base))


def prepare_space(target: Path, model_repo: str | None) -> Path:
    """The Space folder: app, requirements, card (with the model repo) and example media from registry packages."""
    shutil.copytree(SPACE_SOURCE, target, ignore=shutil.ignore_patterns("__pycache__", "examples"), dirs_exist_ok=True)
    write_examples(target / "examples")
    if model_repo:
        card = (target / "README.md").read_text()
        (target / "README.md").write_text(card.replace("models: []", f"models: [{model_repo}]"))
    return target


def write_examples(folder: Path) -> list[Path]:
    """
    Real example media shipped inside registry packages: 8.4-17.8 s of the pyannote-audio sample conversation
    (speech.wav: "Oh, hello. I didn't know you were there. ...") and the face of scikit-image's astronaut photograph
    (face.png; NASA, public domain).
    """
    from importlib.util import find_spec

    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    pyannote = find_spec("pyannote.audio") if find_spec("pyannote") else None
    if pyannote is not None:
        sample = Path(pyannote.submodule_search_locations[0]) / "sample" / "sample.wav"
        with wave.open(str(sample)) as source:
            rate, width, channels = source.getframerate(), source.getsampwidth(), source.getnchannels()
            source.setpos(int(rate * 8.4))
            frames = source.readframes(int(rate * 9.4))
        with wave.open(str(folder / "speech.wav"), "wb") as target:
            target.setnchannels(channels)
            target.setsampwidth(width)
            target.setframerate(rate)
            target.writeframes(frames)
        written.append(folder / "speech.wav")
    skimage = find_spec("skimage")
    if skimage is not None:
        photo = Image.open(Path(skimage.submodule_search_locations[0]) / "data" / "astronaut.png").convert("RGB")
        photo.crop((150, 10, 290, 170)).save(folder / "face.png")  # the face, as a webcam would frame it
        written.append(folder / "face.png")
    return written


def push(
    kind: str,
    repo: str,
    folder: Path | None,
    public: bool,
    dry_run: Path | None,
    model_repo: str | None,
    overwrite: bool = False,
):
    """
    Upload (or, with `dry_run`, write) one model, dataset or Space. Returns the folder or the repo URL, and the files.
    A dry-run folder must lie apart from the source; an existing one is replaced only with `overwrite`, and only if
    it is an earlier dry run of the same kind.
    """
    token = None if dry_run else require_hub_token()
    if kind == "space":
        source, write = SPACE_SOURCE, lambda target: prepare_space(target, model_repo)
    elif folder is None:
        raise PublishError(f"`push {kind}` needs --folder.")
    else:
        selected = model_upload(folder) if kind == "model" else dataset_upload(folder)
        source, write = folder, lambda target: copy_files(selected, folder, target)
    if dry_run:
        command = f"gia-mic push {kind} --dry-run"
        claim_output(dry_run, command, {f"{kind} folder": source}, overwrite)
        base = write_folder(dry_run, write, command=command, overwrite=overwrite)
    elif kind == "space":
        base = Path(tempfile.mkdtemp(prefix="gia-mic-space-")) / "space"
        write(base)
    else:
        base = folder
    files = selected if kind != "space" and not dry_run else [p for p in base.rglob("*") if p.is_file()]
    listing = sorted(str(p.relative_to(base)) for p in files if p.name != MARKER)
    if dry_run:
        return dry_run, listing
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    repo_type = {"model": "model", "dataset": "dataset", "space": "space"}[kind]
    extra = {"space_sdk": "gradio"} if kind == "space" else {}
    url = api.create_repo(repo, repo_type=repo_type, private=not public, exist_ok=True, **extra)
    api.upload_folder(
        repo_id=repo,
        repo_type=repo_type,
        folder_path=str(base),
        allow_patterns=listing,
        commit_message=f"Upload GIA-MIC {kind}",
    )
    if kind == "space" and model_repo:
        api.add_space_variable(repo, "GIA_MIC_MODEL", model_repo)
    return str(url), listing
