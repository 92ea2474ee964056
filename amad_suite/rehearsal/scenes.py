"""What the miniature data say: a dozen COCO "images" with a scene each (an object, its colour and count, a place),
the VQA questions and captions about them in Karpathy's splits, and Multi30K sentence pairs with Flickr30k ids.

Everything is drawn from one seeded generator, so two builds give identical bytes. The words come from the tiny
tokenizers of tests/fixtures/hub (English and a little German), so the tiny models see few unknown pieces.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

OBJECTS = ("dog", "cat", "horse", "bird", "car", "bus")
COLOURS = {
    "red": (200, 30, 30),
    "blue": (30, 60, 200),
    "green": (40, 160, 60),
    "yellow": (230, 210, 40),
    "black": (20, 20, 20),
    "white": (235, 235, 235),
}
NUMBERS = {1: "one", 2: "two", 3: "three"}
PLACES = {"grass": (90, 170, 70), "street": (120, 120, 120), "beach": (220, 200, 150), "snow": (245, 245, 250)}
# COCO ids of the miniature images (any ids would do; these are small real ones)
TRAIN_IDS = (9, 25, 30, 34, 36, 49)
VAL_IDS = (42, 73, 74, 133, 136, 139)
# Karpathy's caption splits of the val2014 images (train2014 images are all "train"); VL-T5's Karpathy VQA split
# uses the same images: train = train + restval, val = val, test = the first two test images.
VAL_SPLITS = {42: "restval", 73: "val", 74: "test", 133: "test", 136: "val", 139: "test"}
VQA_TEST = (74, 133)


@dataclass(frozen=True)
class Scene:
    coco_id: int
    subset: str  # train2014 | val2014
    obj: str
    colour: str
    count: int
    place: str

    @property
    def key(self) -> str:
        """The image key: COCO's file stem, as VL-T5's features and BLIP's image cache name it."""
        return f"COCO_{self.subset}_{self.coco_id:012d}"

    @property
    def caption_split(self) -> str:
        return "train" if self.subset == "train2014" else VAL_SPLITS[self.coco_id]

    @property
    def vqa_split(self) -> str:
        split = self.caption_split
        if split in ("train", "restval"):
            return "train"
        return "test" if self.coco_id in VQA_TEST else "val" if split == "val" else ""

    def plural(self) -> str:
        return self.obj + ("es" if self.obj.endswith("s") else "s") if self.count > 1 else self.obj

    def captions(self) -> list[str]:
        n, things = NUMBERS[self.count], self.plural()
        return [
            f"{n} {self.colour} {things} on the {self.place}",
            f"a picture of {n} {things} on the {self.place}",
            f"{n} {things} standing in the {self.place}",
            f"a {self.colour} {self.obj} near the {self.place}",
            f"there are {n} {things} on the {self.place}",
        ]

    def questions(self) -> list[tuple[str, str, str, str]]:
        """(question, answer, question_type, answer_type) as VQA v2 annotates them."""
        return [
            (f"what color is the {self.obj}?", self.colour, "what color is the", "other"),
            (f"how many {self.obj}s are there?", str(self.count), "how many", "number"),
            (f"is there a {self.obj} on the {self.place}?", "yes", "is there a", "yes/no"),
        ]


def coco_scenes(seed: int = 0) -> list[Scene]:
    """The miniature COCO: six train2014 and six val2014 images."""
    rng = random.Random(seed)
    scenes = []
    for subset, ids in (("train2014", TRAIN_IDS), ("val2014", VAL_IDS)):
        for coco_id in ids:
            colour = rng.choice(sorted(COLOURS))
            scenes.append(
                Scene(coco_id, subset, rng.choice(OBJECTS), colour, rng.randint(1, 3), rng.choice(list(PLACES)))
            )
    return scenes


def annotator_answers(answer: str, answer_type: str, rng: random.Random) -> list[str]:
    """Ten human answers: mostly the right one, one or two others, as in VQA v2."""
    others = {"other": sorted(COLOURS), "number": ["1", "2", "3", "4"], "yes/no": ["yes", "no"]}[answer_type]
    wrong = [a for a in others if a != answer]
    n_wrong = rng.randint(0, 2)
    return [answer] * (10 - n_wrong) + [rng.choice(wrong) for _ in range(n_wrong)]


SUBJECTS = (("a man", "ein mann"), ("a woman", "eine frau"), ("a child", "ein kind"), ("two young men", "zwei junge"))
ACTIONS = (("plays", "spielt"), ("is", "ist"), ("sits", "sitzt"))
PLACES_EN_DE = (("on the street", "auf der straße"), ("in the water", "im wasser"), ("with a dog", "mit dem hund"))
# Multi30K task 1 splits in the manifest -> (sentences, Flickr30k feature file that holds their images)
MULTI30K_SPLITS = {
    "train": (12, "trainval"),
    "val": (3, "trainval"),
    "test_2016_flickr": (3, "trainval"),
    "test_2017_flickr": (3, "test2017"),
    "test_2018_flickr": (3, "test2018"),
}


def multi30k_pairs(seed: int = 0) -> dict[str, list[tuple[str, str, str]]]:
    """split -> [(English, German, Flickr30k image stem)]; stems are unique across splits."""
    rng = random.Random(seed + 1)
    out: dict[str, list[tuple[str, str, str]]] = {}
    stems: set[str] = set()
    for split, (n, _) in MULTI30K_SPLITS.items():
        rows = []
        for _ in range(n):
            (s_en, s_de), (a_en, a_de), (p_en, p_de) = (rng.choice(x) for x in (SUBJECTS, ACTIONS, PLACES_EN_DE))
            stem = str(rng.randrange(10**9, 10**10))
            while stem in stems:
                stem = str(rng.randrange(10**9, 10**10))
            stems.add(stem)
            rows.append((f"{s_en.capitalize()} {a_en} {p_en}.", f"{s_de.capitalize()} {a_de} {p_de}.", stem))
        out[split] = rows
    return out
