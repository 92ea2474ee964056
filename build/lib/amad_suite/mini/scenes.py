"""Synthetic scenes for the mini captioning set: 1-2 coloured shapes on a light background, and their captions.

The language is deliberately small (about 40 words) so tiny Transformers learn it in a minute of CPU training,
but a caption is only right when it gets colour, shape, size and layout right, and the 5 references of an image
use different templates (as human references do), so CIDEr/BLEU separate good models from weak ones.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["COLOURS", "SHAPES", "Scene", "SceneObject", "describe_scene", "render_scene", "sample_scene"]

COLOURS = {
    "red": (215, 40, 40),
    "green": (40, 165, 60),
    "blue": (40, 70, 215),
    "yellow": (235, 205, 40),
    "purple": (140, 50, 190),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": (0.10, 0.13), "large": (0.17, 0.21)}  # radius as a fraction of the image side
SINGLE_POSITIONS = {  # centre (x, y) as fractions of the image side
    "left": (0.27, 0.5),
    "right": (0.73, 0.5),
    "top": (0.5, 0.27),
    "bottom": (0.5, 0.73),
    "middle": (0.5, 0.5),
}
POSITION_PHRASES = {
    "left": ["on the left"],
    "right": ["on the right"],
    "top": ["at the top"],
    "bottom": ["at the bottom"],
    "middle": ["in the middle", "in the center"],
}
SIZE_WORDS = {"small": ["small", "little"], "large": ["large", "big"]}
PICTURE_WORDS = ["picture", "image"]
SUPERSAMPLE = 4


@dataclass(frozen=True)
class SceneObject:
    """One shape: name in SHAPES, colour name in COLOURS, size "small"|"large", centre and radius in pixels."""

    shape: str
    colour: str
    size: str
    cx: float
    cy: float
    radius: float
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class Scene:
    """layout: "single" (position in SINGLE_POSITIONS), "horizontal" (objects[0] left of objects[1]) or
    "vertical" (objects[0] above objects[1])."""

    objects: tuple[SceneObject, ...]
    layout: str
    position: str | None
    background: tuple[int, int, int]
    image_size: int


def _object(rng: random.Random, image_size: int, fx: float, fy: float, taken: set) -> SceneObject:
    while True:
        shape, colour = rng.choice(SHAPES), rng.choice(sorted(COLOURS))
        if (shape, colour) not in taken:
            break
    taken.add((shape, colour))
    size = rng.choice(sorted(SIZES))
    radius = rng.uniform(*SIZES[size]) * image_size
    jitter = 0.05 * image_size
    cx = min(max(fx * image_size + rng.uniform(-jitter, jitter), radius + 1), image_size - radius - 1)
    cy = min(max(fy * image_size + rng.uniform(-jitter, jitter), radius + 1), image_size - radius - 1)
    rgb = tuple(min(255, max(0, c + rng.randint(-15, 15))) for c in COLOURS[colour])
    return SceneObject(shape, colour, size, cx, cy, radius, rgb)


def sample_scene(rng: random.Random, image_size: int = 64) -> Scene:
    """Draw a random scene: half single shapes (5 positions), half pairs side by side or one above the other."""
    background = (255, 255, 255) if rng.random() < 0.5 else tuple(rng.randint(215, 255) for _ in range(3))
    taken: set = set()
    if rng.random() < 0.5:
        position = rng.choice(sorted(SINGLE_POSITIONS))
        obj = _object(rng, image_size, *SINGLE_POSITIONS[position], taken)
        return Scene((obj,), "single", position, background, image_size)
    layout = rng.choice(["horizontal", "vertical"])
    offset = rng.uniform(-0.12, 0.12)
    if layout == "horizontal":
        first, second = (0.27, 0.5 + offset), (0.73, 0.5 - offset)
    else:
        first, second = (0.5 + offset, 0.27), (0.5 - offset, 0.73)
    objects = (_object(rng, image_size, *first, taken), _object(rng, image_size, *second, taken))
    return Scene(objects, layout, None, background, image_size)


def render_scene(scene: Scene):
    """Draw the scene (antialiased by supersampling). Returns a PIL RGB image of side ``scene.image_size``."""
    from PIL import Image, ImageDraw

    big = scene.image_size * SUPERSAMPLE
    image = Image.new("RGB", (big, big), scene.background)
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        x, y, r = obj.cx * SUPERSAMPLE, obj.cy * SUPERSAMPLE, obj.radius * SUPERSAMPLE
        if obj.shape == "circle":
            draw.ellipse((x - r, y - r, x + r, y + r), fill=obj.rgb)
        elif obj.shape == "square":
            half = 0.85 * r
            draw.rectangle((x - half, y - half, x + half, y + half), fill=obj.rgb)
        else:
            draw.polygon([(x, y - r), (x - 0.95 * r, y + 0.8 * r), (x + 0.95 * r, y + 0.8 * r)], fill=obj.rgb)
    return image.resize((scene.image_size, scene.image_size), Image.Resampling.LANCZOS)


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _single_templates(o: SceneObject, pos: str, rng: random.Random) -> list[str]:
    z, c, s = rng.choice(SIZE_WORDS[o.size]), o.colour, o.shape
    pic = rng.choice(PICTURE_WORDS)
    return [
        f"a {c} {s}",
        f"a {z} {c} {s}",
        f"a {c} {s} {pos}",
        f"a {z} {c} {s} {pos}",
        f"there is a {z} {c} {s} {pos}",
        f"{_a(pic)} of a {c} {s}",
        f"one {c} {s} {pos}",
        f"{_a(pic)} with a {z} {c} {s}",
    ]


def _pair_templates(a: SceneObject, b: SceneObject, layout: str, rng: random.Random) -> list[str]:
    ca, sa, cb, sb = a.colour, a.shape, b.colour, b.shape
    za, zb = rng.choice(SIZE_WORDS[a.size]), rng.choice(SIZE_WORDS[b.size])
    pic = rng.choice(PICTURE_WORDS)
    common = [
        f"a {ca} {sa} and a {cb} {sb}",
        f"two shapes a {za} {ca} {sa} and a {zb} {cb} {sb}",
        f"{_a(pic)} of a {cb} {sb} and a {ca} {sa}",
    ]
    if layout == "horizontal":
        return [
            *common,
            f"a {ca} {sa} to the left of a {cb} {sb}",
            f"a {cb} {sb} to the right of a {ca} {sa}",
            f"a {za} {ca} {sa} next to a {zb} {cb} {sb}",
            f"there is a {ca} {sa} on the left and a {cb} {sb} on the right",
        ]
    return [
        *common,
        f"a {ca} {sa} above a {cb} {sb}",
        f"a {cb} {sb} below a {ca} {sa}",
        f"a {za} {ca} {sa} above a {zb} {cb} {sb}",
        f"there is a {ca} {sa} at the top and a {cb} {sb} at the bottom",
    ]


def describe_scene(scene: Scene, rng: random.Random, n: int = 5) -> list[str]:
    """``n`` distinct captions of the scene from different templates and synonyms (deterministic given ``rng``)."""
    if scene.layout == "single":
        pos = rng.choice(POSITION_PHRASES[scene.position])
        pool = _single_templates(scene.objects[0], pos, rng)
    else:
        pool = _pair_templates(scene.objects[0], scene.objects[1], scene.layout, rng)
    pool = list(dict.fromkeys(pool))
    return rng.sample(pool, min(n, len(pool)))
