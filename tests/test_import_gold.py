"""Gold training sets through the import mode and the corpus: SNLI, all-nli triplets, COCO."""

import json

import polars as pl
import pytest

from embedlab import schemas
from embedlab.coco import image_split
from embedlab.corpus import Source, build_corpus
from embedlab.evaluate.retrieval import coco_retrieval
from embedlab.synth import import_pairs

SNLI = [  # premise, hypothesis, label (0 entailment, 1 neutral, 2 contradiction)
    ("two dogs run on the beach", "animals are outside", "0"),
    ("two dogs run on the beach", "the dogs are chasing a ball", "1"),
    ("two dogs run on the beach", "the cats sleep indoors", "2"),
    ("a man plays a red guitar", "a person makes music", "0"),
    ("a man plays a red guitar", "a man plays a song he wrote", "1"),  # no contradiction
    ("a girl reads in a park", "a girl sits in her room", "2"),  # no entailment
    ("a girl reads in a park", "someone is unsure", "-1"),  # no gold label
]


def snli_file(path, rows=SNLI):
    path.write_text("".join("\t".join(r) + "\n" for r in rows))
    return path


def test_snli_rows_become_one_triplet_per_premise_with_a_reason_for_every_drop(tmp_path):
    pairs, rejected, stats = import_pairs(snli_file(tmp_path / "dev.txt"))  # layout by suffix
    schemas.validate(pairs, schemas.Pairs, "pairs")
    schemas.validate(rejected, schemas.Rejected, "rejected")
    assert pairs.select("anchor", "positive", "hard_negative").rows() == [
        ("two dogs run on the beach", "animals are outside", "the cats sleep indoors")
    ]
    reasons = dict(zip(rejected["anchor"], rejected["reason"], strict=True))
    assert reasons == {
        "a man plays a red guitar": "no_contradiction",
        "a girl reads in a park": "no_entailment",
    }
    assert stats["hypotheses_without_gold_label"] == 1 and stats["rows"] == 3
    assert pairs["prompt_id"][0] == "import:snli"


def test_snli_bad_label_names_the_file_and_row(tmp_path):
    bad = snli_file(tmp_path / "bad.txt", [*SNLI[:2], ("a b c", "d e f", "entailment")])
    with pytest.raises(schemas.DataError, match=r"bad\.txt: row 3: label 'entailment'"):
        import_pairs(bad)


def test_several_files_from_a_mirror_and_anchors_from_a_corpus(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "snli").mkdir(parents=True)
    snli_file(mirror / "snli" / "dev.txt", SNLI[:3])
    snli_file(mirror / "snli" / "test.txt", SNLI[3:])
    names = ["snli/dev.txt", "snli/test.txt"]
    pairs, rejected, _ = import_pairs(names, layout="snli", mirrors=[mirror])
    assert pairs.height == 1 and rejected.height == 2
    assert pairs["generator"][0] == "dev.txt,test.txt"
    # the corpus keeps only the premises that have both hypotheses, and says how many it dropped
    corpus, counts = build_corpus(
        [Source(n, format="snli", name="snli") for n in names], mirrors=[mirror]
    )
    assert corpus["text"].to_list() == ["two dogs run on the beach"]
    assert counts["dropped_incomplete"] == 2
    only, _, stats = import_pairs(names, layout="snli", mirrors=[mirror], anchors=["x y z"])
    assert only.height == 0 and stats["not_in_anchors"] == 3


def test_triplet_layout_and_coco_captions(tmp_path):
    triplets = tmp_path / "all-nli.parquet"
    pl.DataFrame(
        {"anchor": ["A dog runs."], "positive": ["A canine runs."], "negative": ["A cat sits."]}
    ).write_parquet(triplets)
    pairs, _, _ = import_pairs(triplets)
    assert pairs["prompt_id"].to_list() == ["import:triplet"]
    # 21 images of two captions but one of one caption: only the train part of the fixed image
    # split is read, so the images the COCO retrieval task scores are never trained on
    coco = tmp_path / "captions.json"
    annotations = [
        {"id": 2 * i + k, "image_id": i, "caption": f"Scene {i} seen {'once twice'.split()[k]}."}
        for i in range(21)
        for k in range(2)
    ]
    train = [i for i, part in image_split(range(21)).items() if part == "train"]
    lone = train[0]  # a train image with one caption
    annotations = [a for a in annotations if a["image_id"] != lone]
    annotations += [{"id": 99, "image_id": lone, "caption": "A  lone surfer on a wave."}]
    coco.write_text(json.dumps({"images": [], "annotations": annotations}))
    pairs, rejected, stats = import_pairs(coco)
    assert sorted(pairs.select("anchor", "positive").rows()) == sorted(
        (f"Scene {i} seen once.", f"Scene {i} seen twice.") for i in train if i != lone
    )
    assert pairs["hard_negative"].is_null().all()
    assert rejected.select("anchor", "reason").rows() == [
        ("A lone surfer on a wave.", "single_caption")
    ]
    assert stats["held_out_images"] == 21 - len(train) > 0
    broken = tmp_path / "broken.json"
    broken.write_text('{"annotations": [{"image_id": 1}]}')
    with pytest.raises(schemas.DataError, match=r"broken\.json: annotation 0 lacks"):
        import_pairs(broken)


def test_the_mirror_snli_and_coco_files_read_through(mirror):
    pairs, rejected, stats = import_pairs(
        ["train/snli/dev.txt", "train/snli/test.txt"], layout="snli", mirrors=[mirror]
    )
    assert 5000 < pairs.height < 6000  # about 5,900 premises with both hypotheses
    assert stats["rows"] == pairs.height + rejected.height  # nothing dropped silently
    assert set(rejected["reason"]) <= {
        "no_entailment",
        "no_contradiction",
        "positive_copies_anchor",
        "negative_copies_anchor",
        "positive_equals_negative",
        "duplicate",
    }
    captions, _, _ = import_pairs("train/coco-captions/captions_val2017.json", mirrors=[mirror])
    # one pair per train image: 70% of 5,000; none of the test images the retrieval task scores
    assert 3450 < captions.height <= 3500
    test = coco_retrieval([mirror])
    held_out = {(test.queries[q], test.corpus[min(docs)]) for q, docs in test.qrels.items()}
    assert len(held_out) > 900 and not held_out & set(captions.select("anchor", "positive").rows())


def test_a_synthesis_that_accepts_nothing_stops_with_its_reasons_and_keeps_them(tmp_path, capsys):
    """Every premise lacks a contradiction: exit 1 naming the reasons and where the rejected
    rows are (they are written), no pairs table for the next stage to fail on."""
    from embedlab.cli import main

    rows = [r for r in SNLI if r[2] != "2"]
    out = tmp_path / "synth"
    args = [
        "synthesize",
        "--mode",
        "import",
        "--import-path",
        str(snli_file(tmp_path / "d.txt", rows)),
    ]
    args += ["--pairs-out", str(out / "pairs.parquet"), "--rejected-out", str(out / "rej.parquet")]
    assert main([*args, "--teacher-margin", "none"]) == 1
    err = capsys.readouterr().err
    assert "synthesize accepted none of 2 rows" in err and "no_contradiction 2" in err, err
    assert str(out / "rej.parquet") in err
    assert schemas.read(out / "rej.parquet", schemas.Rejected).height == 2
    assert not (out / "pairs.parquet").exists()
