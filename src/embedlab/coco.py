"""COCO captions: the captions of each image, and one fixed split of the images.

Two captions of one image describe the same scene in other words, so COCO gives positive pairs
for training (``synthesize`` with ``layout: coco``) and a caption-to-caption retrieval task for
evaluation (``evaluate.retrieval: [coco]``). Both use ``image_split``: a split by image, fixed
by a hash of the image id, so the test images' captions are never trained on whatever the
config, and a rerun anywhere draws the same split.

Example::

    captions = read_captions(resolve_file(CAPTIONS, ["../shared/data"]))
    test = [i for i, part in image_split(captions).items() if part == "test"]
"""

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from embedlab.schemas import DataError, reading
from embedlab.text import squash

# the mirror's caption file (COCO 2017 val: about 5 captions for each of 5,000 images)
CAPTIONS = "train/coco-captions/captions_val2017.json"
# the image split: fractions of the images, in this order along the hash ranking
SPLIT: dict[str, float] = {"train": 0.7, "dev": 0.1, "test": 0.2}
SPLIT_SEED = 0


def read_captions(path: str | Path) -> dict[int, list[str]]:
    """Each image's captions, in annotation-id order, whitespace normalised; a file that is no
    COCO caption file, or an annotation without ``image_id`` or ``caption``, is named."""
    import fsspec

    with reading(str(path), "a COCO caption file (JSON)"):
        with fsspec.open(str(path), "r", encoding="utf-8") as f:
            data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise DataError(f"{path}: no 'annotations' list; not a COCO caption file")
    captions: dict[int, list[tuple[int, str]]] = {}
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not {"image_id", "caption"} <= set(ann):
            raise DataError(f"{path}: annotation {i} lacks image_id or caption")
        captions.setdefault(ann["image_id"], []).append((ann.get("id", i), ann["caption"]))
    return {image: [squash(c) for _, c in sorted(caps)] for image, caps in sorted(captions.items())}


def image_split(images: Iterable[int], seed: int = SPLIT_SEED) -> dict[int, str]:
    """Each image's part (``train``, ``dev`` or ``test``, in ``SPLIT``'s fractions): images
    ranked by sha256 of ``"<seed>:<image id>"``, the first 70% train, the next 10% dev, the
    rest test. The same id is in the same part whatever other images are listed with it only
    up to the cut points; with the mirror's file the split is fixed.

    >>> parts = image_split(range(100))
    >>> [sum(p == part for p in parts.values()) for part in SPLIT]
    [70, 10, 20]
    """
    ranked = sorted(images, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    parts, start = {}, 0
    for k, (part, fraction) in enumerate(SPLIT.items()):
        end = len(ranked) if k == len(SPLIT) - 1 else start + round(fraction * len(ranked))
        parts |= dict.fromkeys(ranked[start:end], part)
        start = end
    return parts
