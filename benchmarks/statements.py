"""
The world's priors on text (issue 23.2): a model's text-alone answers on plain statements of fact (which should be
neutral) and on clear emotional statements (which should keep their emotion), written for this project (none is from a
corpus), with the model's prior correction (`target_prior`, as served) and without it (the balanced training sample's
prior), side by side:

    python benchmarks/statements.py --model .cache/demo/gia-mic-starter

The statements are the tests' (`tests/test_statements.py`). Emotions are named as the starter's labels; a model with
MELD's label names is compared through `MELD_NAMES`.
"""

import argparse

import numpy as np
from transformers import pipeline

from gia_mic.starter import CORPORA


PLAIN_STATEMENTS = [
    "The meeting starts at ten tomorrow.",
    "Dogs are sitting by the door.",
    "Kids are talking by the door.",
    "The train to Leeds leaves from platform four.",
    "Turn left at the second traffic light.",
    "The report is due on Friday.",
    "I bought milk and bread this morning.",
    "The library closes at six on weekdays.",
    "Please put the boxes in the storage room.",
    "The bus takes about twenty minutes.",
    "We moved the printer to the second floor.",
    "The form needs a signature on page two.",
    "My sister lives in a small town near the coast.",
    "The store is open until nine.",
    "Take the stairs to the third floor and the office is on the right.",
    "The package arrived on Tuesday.",
]
EMOTIONAL_STATEMENTS = [
    ("I am so happy, this is the best day of my life!", "joy"),
    ("We won! I can't believe it, this is wonderful!", "joy"),
    ("I miss her so much, I can't stop crying.", "sadness"),
    ("He died last night and I feel completely empty.", "sadness"),
    ("Get out of my house right now, I'm sick of your lies!", "anger"),
    ("How dare you talk to me like that!", "anger"),
    ("I'm terrified, someone is trying to break in.", "fear"),
    ("Please don't hurt me, I'm so scared.", "fear"),
    ("What? You're getting married? No way!", "surprise"),
    ("Oh my god, I didn't expect that at all!", "surprise"),
    ("That's disgusting, there are maggots in the food.", "disgust"),
    ("Ugh, that smell makes me want to throw up.", "disgust"),
]
MELD_NAMES = CORPORA["meld"][1]  # MELD's emotion names -> the starter's


def answers(classifier, sentences: list[str]) -> tuple[list[str], list[str]]:
    """Each sentence's top emotion with the model's prior correction and without it."""
    config = classifier.model.config
    names = [config.id2label[i] for i in range(config.num_labels)]
    adjustment = classifier.model.logit_adjustment.numpy() if config.target_prior else np.zeros(len(names))
    corrected, balanced = [], []
    for sentence in sentences:
        scores = {answer["label"]: answer["score"] for answer in classifier({"text": sentence}, top_k=None)}
        log_probabilities = np.log([scores[name] for name in names])
        corrected.append(
            MELD_NAMES.get(names[int(log_probabilities.argmax())], names[int(log_probabilities.argmax())])
        )
        uncorrected = names[int((log_probabilities - adjustment).argmax())]
        balanced.append(MELD_NAMES.get(uncorrected, uncorrected))
    return corrected, balanced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=".cache/demo/gia-mic-starter")
    args = parser.parse_args()
    classifier = pipeline("multimodal-emotion-recognition", model=args.model, trust_remote_code=True)
    plain = answers(classifier, PLAIN_STATEMENTS)
    sentences, emotions = zip(*EMOTIONAL_STATEMENTS)
    emotional = answers(classifier, list(sentences))
    expected = [MELD_NAMES.get(e, e) for e in emotions]
    print("                          with the prior correction   without it")
    print(
        f"plain statements neutral  {plain[0].count('neutral'):2d} / {len(PLAIN_STATEMENTS)}"
        f"                     {plain[1].count('neutral'):2d} / {len(PLAIN_STATEMENTS)}"
    )
    kept = [sum(a == e for a, e in zip(side, expected)) for side in emotional]
    print(
        f"emotional kept            {kept[0]:2d} / {len(expected)}                     {kept[1]:2d} / {len(expected)}"
    )
    for sentence, answer, without in zip(
        PLAIN_STATEMENTS + list(sentences), plain[0] + emotional[0], plain[1] + emotional[1]
    ):
        print(f"  {answer:10s} {without:10s} {sentence}")


if __name__ == "__main__":
    main()
