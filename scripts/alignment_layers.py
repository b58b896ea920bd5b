"""Which decoder layer's attention aligns words best: each layer's argmax links (mt.alignment.
word_alignment) against hand-made links for the shipped en->zh model's own translations.

    python scripts/alignment_layers.py [--checkpoint checkpoints/default]

A target word counts as right when its link goes to one of its gold source words; target words
without a source counterpart are not counted. The gold links are for the translations below, by
the Tatoeba-only model shipped before 2026-12-06: a sentence the checkpoint translates otherwise
(or cuts into other words) is reported and skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mt.alignment import word_alignment
from mt.translate import Translator

# (source, the model's translation, gold source words of each target word in order; () = none)
GOLD = [
    ("I love machine learning", "我喜欢学机器。", [(0, 1), (3,), (2,), ()]),
    ("He wants to kiss her.", "他想亲她。", [(0,), (1,), (3,), (4,), (5,)]),
    ("The cat is sleeping on the bed.", "猫睡觉了。", [(1,), (3,), (2, 3), (7,)]),
    ("I do not like apples.", "我不喜欢苹果。", [(0, 1, 2, 3), (4,), (5,)]),
    ("My mother is a teacher.", "我妈妈是老师。", [(0, 1), (2, 3, 4), (5,)]),
    ("We will go to school tomorrow.", "我们明天去学校。", [(0, 5), (2, 3, 4), (6,)]),
    ("Where is the train station?", "车站在哪里？", [(3, 4), (0, 1), (5,)]),
    ("She reads a book every day.", "她每天读一本书。", [(0,), (4, 5), (1,), (2, 3), (6,)]),
    ("This car is very expensive.", "这辆车很贵。", [(0, 1), (3,), (4,), (5,)]),
    ("They are playing football in the park.", "他们在公园玩。", [(0, 1, 4), (6,), (2,), (7,)]),
    ("I have two brothers.", "我有兄弟。", [(0, 1), (3,), (4,)]),
    ("Please open the window.", "请开窗。", [(0,), (1, 3), (4,)]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("checkpoints/default"))
    translator = Translator.from_checkpoint(parser.parse_args().checkpoint)
    results = list(translator.translate([source for source, _, _ in GOLD], return_attention=True))
    layers = results[0].attention.size(1)
    right, counted = [0] * layers, 0
    for result, (source, expected, gold) in zip(results, GOLD):
        links = [word_alignment(result, layer) for layer in range(layers)]
        if result.text != expected or any(target >= len(gold) for layer in links for _, target in layer):
            print(f"skipped {source!r}: translated {result.text!r} (in other words), the gold links are for {expected!r}")
            continue
        counted += sum(1 for sources in gold if sources)
        for layer in range(layers):
            right[layer] += sum(source in gold[target] for source, target in links[layer])
    print(f"{counted} target words with gold links in {len(GOLD)} sentences")
    for layer, count in enumerate(right):
        print(f"layer {layer}: {count}/{counted} right ({count / counted:.0%})")


if __name__ == "__main__":
    main()
