"""
Face detection (the processor's `detect_faces`: dlib's detectors, aligned by 5 landmarks) with the demo's starter
model, face input only:

    python benchmarks/faces.py --model .cache/demo/gia-mic-starter [--fer-rows 1400]

- FER-2013 test (tight 48 x 48 crops): accuracy without detection, and with it (share of faces found; accuracy on
  those and on all, a face not found counting as wrong), side by side on the same rows;
- real photographs where the face is small (FER-2013 test faces and the demo's example face pasted at 1/8 and 1/16
  of the width of a 1600 x 1200 photograph with no face of its own): whether the face is found, and how far the
  prediction moves from the tight crop's, and whether its answer is the tight crop's; real photographs without a face
  (scikit-image's `data/` and matplotlib's) and 6000 x 6000 noise: how many are answered as faces.
"""

import argparse
import glob
import random
import tempfile
import time
from pathlib import Path

import matplotlib.cbook
import numpy as np
import torch
from PIL import Image


ROOT = Path(__file__).resolve().parents[1]
FER = ROOT.parent / "shared" / "data" / "fer2013" / "test"
FER_TO_SHARED = {
    "angry": "angry",
    "disgust": "disgusted",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprise": "surprised",
}


def probabilities(model, processor, images: list[Image.Image]) -> np.ndarray:
    batch = processor(images=[[image] for image in images])
    with torch.no_grad():
        logits = model(pixel_values=batch["pixel_values"], frame_mask=batch["frame_mask"]).logits
    return logits.softmax(-1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--model", type=Path, default=ROOT / ".cache" / "demo" / "gia-mic-starter")
    parser.add_argument("--fer-rows", type=int, default=1400)
    args = parser.parse_args()
    from transformers import AutoModelForAudioClassification, AutoProcessor
    from transformers.utils import logging

    logging.set_verbosity_error()
    model = AutoModelForAudioClassification.from_pretrained(args.model, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(args.model, trust_remote_code=True)
    processor.detect_faces = False
    tools = __import__(type(processor).__module__, fromlist=["cut_to_faces"])
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]

    files = sorted(glob.glob(str(FER / "*" / "*.jpg")))
    random.Random(0).shuffle(files)
    files = files[: args.fer_rows]
    images = [Image.open(path).convert("RGB") for path in files]
    truth = np.array([labels.index(FER_TO_SHARED[Path(path).parent.name]) for path in files])
    plain = probabilities(model, processor, images).argmax(-1)
    start = time.perf_counter()
    found, crops = [], []
    for index, image in enumerate(images):
        try:
            crops.append(Image.fromarray(tools.cut_to_faces([[image]])[0][0]))
            found.append(index)
        except tools.NoFaceFoundError:
            continue
    seconds = (time.perf_counter() - start) / len(images)
    detected = probabilities(model, processor, crops).argmax(-1)
    found = np.array(found)
    print(f"FER-2013 test, {len(images)} rows (tight crops), face input alone:")
    print(f"  without detection: accuracy {(plain == truth).mean():.3f}")
    print(
        f"  with detection:    faces found {len(found) / len(images):.3f}; accuracy on those "
        f"{(detected == truth[found]).mean():.3f} (without detection on the same rows: "
        f"{(plain[found] == truth[found]).mean():.3f}); on all rows, not found = wrong: "
        f"{(detected == truth[found]).sum() / len(images):.3f}; {1000 * seconds:.1f} ms per image"
    )

    background = Image.open(matplotlib.cbook.get_sample_data("Minduka_Present_Blue_Pack.png")).convert("RGB")
    from gia_mic.hub import write_examples

    written = {path.stem: path for path in write_examples(Path(tempfile.mkdtemp()))}
    example = Image.open(written["face"]).convert("RGB")
    faces = [example, *images[:8]]
    print("\nSmall faces in a 1600 x 1200 photograph (detection on), against the tight crop:")
    for fraction in (8, 16):
        shifts, hits, same = [], 0, 0
        for face in faces:
            photo = background.resize((1600, 1200))
            side = 1600 // fraction
            photo.paste(face.resize((side, round(side * face.height / face.width))), (1000, 600))
            cropped = face_or_none(tools, photo)
            if cropped is None:
                continue
            hits += 1
            tight = face_or_none(tools, face) if face is example else face
            moved, tight_answer = probabilities(model, processor, [cropped]), probabilities(model, processor, [tight])
            shifts.append(np.abs(moved - tight_answer).max())
            same += int(moved.argmax() == tight_answer.argmax())
        print(
            f"  face 1/{fraction} of the width: found {hits}/{len(faces)}, the tight crop's answer {same}/{hits}; "
            f"largest change of a class probability: median {np.median(shifts):.3f}, max {np.max(shifts):.3f}"
        )
    noise = np.random.default_rng(0).integers(0, 255, (6000, 6000, 3), dtype=np.uint8)
    pictures = {"matplotlib's photograph": background, **face_free_photographs(), "6000 x 6000 noise": noise}
    answered = [name for name, picture in pictures.items() if face_or_none(tools, picture) is not None]
    print(f"\nPictures without a face answered as faces: {len(answered)} of {len(pictures)} {answered}")


def face_or_none(tools, picture):
    try:
        return Image.fromarray(tools.cut_to_faces([[picture]])[0][0])
    except tools.NoFaceFoundError:
        return None


def face_free_photographs() -> dict[str, Image.Image]:
    """scikit-image's sample photographs that hold no human face (astronaut and camera do; they are left out)."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    names = [
        "brick.png", "cell.png", "chelsea.png", "clock_motion.png", "coffee.png", "coins.png", "color.png",
        "grass.png", "gravel.png", "horse.png", "hubble_deep_field.jpg", "ihc.png", "microaneurysms.png", "moon.png",
        "motorcycle_left.png", "page.png", "retina.jpg", "rocket.jpg", "text.png",
    ]  # fmt: skip
    return {name: Image.open(folder / name).convert("RGB") for name in names}


if __name__ == "__main__":
    main()
