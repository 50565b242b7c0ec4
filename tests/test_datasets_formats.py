"""Parsers of every raw format, on small fixture files written here, including bad input."""

import gzip
import json
import logging

import numpy as np
import pytest
import tensorflow as tf

import datasets
from datasets import files, images
from datasets.errors import DataFormatError, MissingDataError
from datasets.inspect import inspect_dataset, parse_options
from datasets.sst import parse_tree


def write(path, text: str, *, gz: bool = False, encoding: str = "utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode(encoding) if isinstance(text, str) else text
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- shared readers
def test_read_text_strips_bom_and_crlf(tmp_path):
    path = write(tmp_path / "a.tsv", "\ufeffx\ty\r\n1\t2\r\n\r\n")
    header, rows = files.read_tsv(str(path))
    assert header == ["x", "y"] and rows == [(2, {"x": "1", "y": "2"})]


def test_tsv_quotes_are_ordinary_characters(tmp_path):
    path = write(tmp_path / "q.tsv", 'a\tb\n"open quote\tclose" here"\n')
    _, rows = files.read_tsv(str(path))
    assert rows[0][1] == {"a": '"open quote', "b": 'close" here"'}


def test_wrong_column_count_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.tsv", "a\tb\n1\t2\n1\t2\t3\n")
    with pytest.raises(DataFormatError, match=r"bad\.tsv, line 3: expected 2") as e:
        files.read_tsv(str(path))
    assert e.value.line == 3 and e.value.path == str(path)


def test_bad_utf8_names_the_line(tmp_path):
    path = write(tmp_path / "bad.txt", b"ok\nstill ok\nbad \xff byte\n")
    with pytest.raises(DataFormatError, match="line 3: invalid UTF-8"):
        files.read_text(str(path))


def test_truncated_gzip(tmp_path):
    good = write(tmp_path / "t.txt", "x\n" * 5000, gz=True)
    data = good.read_bytes()
    good.write_bytes(data[:len(data) // 2])
    with pytest.raises(DataFormatError, match="truncated or corrupt gzip"):
        files.read_text(str(good))


def test_missing_file_lists_what_was_tried(tmp_path):
    with pytest.raises(MissingDataError, match="train.txt.gz") as e:
        files.find_file(str(tmp_path), ["trees/train.txt"], "SST trees")
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, ValueError)


def test_invalid_json_line(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"a": 1}\n{"a": \n')
    with pytest.raises(DataFormatError, match="line 2: invalid JSON"):
        files.read_jsonl(str(path))


# ----------------------------------------------------------------------------- SST trees
TREES = [
    "(3 (2 (2 The) (2 Rock)) (4 (3 (2 is) (4 great)) (2 .)))",
    "(1 (2 -LRB-) (1 (1 bad) (2 (2 writer\\/director) (2 ``hm''))))",
    "(2 (2 The) (2 Rock))",
]


def test_parse_tree_and_ptb_escapes():
    tree = parse_tree(TREES[1])
    assert tree.label == 1 and tree.text() == '( bad writer/director ``hm\'\''
    assert parse_tree("(2 (2 ``) (2 x) (2 ''))").text() == '" x "'
    assert parse_tree(TREES[1], unescape=False).text().startswith("-LRB- bad writer\\/director")
    assert [n.label for n in parse_tree(TREES[0]).subtrees()] == [3, 2, 2, 2, 4, 3, 2, 4, 2]


@pytest.mark.parametrize("line, message", [
    ("(3 (2 a)", "not closed"), ("(3 (2 a)))", "unbalanced"), ("(7 (2 a))", "0-4"),
    ("(3 (2 a) b)", "one word or children"), ("(3 (2 a)) (2 b)", "after the end"),
    ("(3 ())", "not followed by a label"), ("(3)", "empty node"),
])
def test_malformed_trees(line, message):
    with pytest.raises(DataFormatError, match=message) as e:
        parse_tree(line, path="t.txt", line_number=4)
    assert "t.txt, line 4, field 'tree'" in str(e.value)


@pytest.fixture
def sst_dir(tmp_path):
    for split in ("train", "dev", "test"):
        write(tmp_path / "sst" / "trees" / f"{split}.txt", "\n".join(TREES) + "\n",
              gz=split == "train")
    return str(tmp_path)


def test_sst5_and_sst2(sst_dir):
    sst5 = datasets.load("sst5", "train", sst_dir)
    assert sst5.columns["label"] == [3, 1, 2] and sst5.dropped == {}
    assert sst5.source[0].endswith("train.txt.gz")
    sst2 = datasets.load("sst2", "dev", sst_dir)
    assert sst2.columns == {"text": ["The Rock is great .", "( bad writer/director ``hm''"],
                            "label": [1, 0]}
    assert sst2.dropped == {"neutral": 1} and sst2.num_rows == 2
    assert sst2.label_names == ("negative", "positive")


def test_sst_phrases_dedupe_and_neutral(sst_dir):
    sst5 = datasets.load("sst5", "train", sst_dir, phrases=True)
    texts = sst5.columns["text"]
    assert len(texts) == len(set(texts))
    assert "The Rock" in texts and "great" in texts
    # tree 3 repeats "The Rock" and its words: every one of its 3 nodes is a duplicate
    assert sst5.dropped["duplicate_phrase"] >= 3
    sst2 = datasets.load("sst2", "train", sst_dir, phrases=True)
    assert 2 not in sst2.columns["label"] and "The Rock" not in sst2.columns["text"]
    assert sst2.dropped["neutral"] > 0
    # phrases only change train
    assert datasets.load("sst5", "dev", sst_dir, phrases=True).num_rows == 3


def test_sst_missing_split_file(tmp_path):
    with pytest.raises(MissingDataError, match="SST trees"):
        datasets.load("sst5", "test", str(tmp_path))


# ----------------------------------------------------------------------------- GLUE SST-2
def test_glue_sst2(tmp_path):
    root = tmp_path / "sst" / "glue_sst2"
    write(root / "train.tsv", "sentence\tlabel\nit 's \"great \t1\nbad \t0\n", gz=True)
    write(root / "test.tsv", "index\tsentence\n0\tfoo .\n")
    train = datasets.load("glue_sst2", "train", str(tmp_path))
    assert train.columns == {"text": ['it \'s "great', "bad"], "label": [1, 0]}
    test = datasets.load("glue_sst2", "test", str(tmp_path))
    assert test.columns["label"] == [-1] and test.label_counts() == {"unlabelled": 1}
    write(root / "dev.tsv", "sentence\tlabel\nok\t2\n")
    with pytest.raises(DataFormatError, match=r"line 2, field 'label': unknown label '2'"):
        datasets.load("glue_sst2", "dev", str(tmp_path))
    write(root / "dev.tsv", "sentence\tlabel\n  \t1\n")
    with pytest.raises(DataFormatError, match="field 'sentence': empty text"):
        datasets.load("glue_sst2", "dev", str(tmp_path))


def test_an_empty_split_is_an_error_at_load_time_naming_the_file(tmp_path):
    path = write(tmp_path / "sst" / "glue_sst2" / "dev.tsv", "sentence\tlabel\n")
    with pytest.raises(DataFormatError, match=f"{path}: the glue_sst2 dev split has no examples"):
        datasets.load("glue_sst2", "dev", str(tmp_path))
    write(tmp_path / "snli" / "dev.tsv",
          "gold_label\tsentence1\tsentence2\n-\tA man.\tA person.\n")
    with pytest.raises(DataFormatError, match=r"no examples \(1 dropped: no_gold_label\)"):
        datasets.load("snli", "dev", str(tmp_path))


def test_the_online_sources_resolve_without_a_download():
    """TFDS builders of the datasets with an online copy load their metadata (a fresh
    ./setup.sh once lacked a module glue/mrpc needs for this)."""
    import tensorflow_datasets as tfds

    for name in ("glue/mrpc", "glue/sst2", "snli", "imdb_reviews"):
        assert tfds.builder(name).url_infos, name


# ----------------------------------------------------------------------------- MRPC
MRPC_HEADER = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
MRPC_TEST_HEADER = "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n"


@pytest.fixture
def mrpc_dir(tmp_path):
    glue = tmp_path / "mrpc" / "glue"
    write(glue / "train.tsv", MRPC_HEADER + '1\t1\t2\tHe said "yes.\tHe agreed.\n'
          "0\t3\t4\tA b.\tC d.\n")
    write(glue / "test.tsv", MRPC_TEST_HEADER + "0\t10\t11\tX.\tY.\n1\t12\t13\tZ.\tW.\n")
    write(tmp_path / "mrpc" / "original" / "msr_paraphrase_test.txt",
          MRPC_HEADER + "1\t10\t11\tX.\tY.\n0\t12\t13\tZ.\tW.\n")
    return tmp_path


def test_mrpc_train_and_test_labels(mrpc_dir):
    train = datasets.load("mrpc", "train", str(mrpc_dir))
    assert train.columns == {"text_a": ['He said "yes.', "A b."], "text_b": ["He agreed.", "C d."],
                             "label": [1, 0]}
    test = datasets.load("mrpc", "test", str(mrpc_dir))
    assert test.columns["label"] == [1, 0] and len(test.source) == 2


def test_mrpc_test_ids_must_match(mrpc_dir):
    write(mrpc_dir / "mrpc" / "original" / "msr_paraphrase_test.txt",
          MRPC_HEADER + "1\t10\t11\tX.\tY.\n0\t12\t99\tZ.\tW.\n")
    with pytest.raises(DataFormatError, match=r"line 3, field '#2 ID': id '99'"):
        datasets.load("mrpc", "test", str(mrpc_dir))


def test_mrpc_test_needs_the_original_labels(mrpc_dir):
    (mrpc_dir / "mrpc" / "original" / "msr_paraphrase_test.txt").unlink()
    with pytest.raises(MissingDataError, match="MRPC test labels"):
        datasets.load("mrpc", "test", str(mrpc_dir))


def test_mrpc_missing_header_column(mrpc_dir):
    write(mrpc_dir / "mrpc" / "glue" / "dev.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\n")
    with pytest.raises(DataFormatError, match="lacks column '#2 String'"):
        datasets.load("mrpc", "dev", str(mrpc_dir))


# ----------------------------------------------------------------------------- SNLI
def snli_jsonl(rows):
    return "".join(json.dumps({"gold_label": g, "sentence1": a, "sentence2": b,
                               "annotator_labels": [g]}) + "\n" for g, a, b in rows)


SNLI_ROWS = [("neutral", "A man.", "A tall man."), ("-", "A dog.", "A cat."),
             ("contradiction", "Two women.", "No one.")]


def test_snli_jsonl_drops_and_counts_no_gold_label(tmp_path):
    write(tmp_path / "snli" / "snli_1.0" / "snli_1.0_dev.jsonl", snli_jsonl(SNLI_ROWS))
    dev = datasets.load("snli", "dev", str(tmp_path))
    assert dev.columns == {"text_a": ["A man.", "Two women."], "text_b": ["A tall man.", "No one."],
                           "label": [1, 2]}
    assert dev.dropped == {"no_gold_label": 1} and dev.info["sample"] is False


def test_snli_txt_format(tmp_path):
    header = ("gold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
              "sentence2_parse\tsentence1\tsentence2\tcaptionID\tpairID\tlabel1\n")
    body = "".join(f"{g}\t(x)\t(y)\t(X)\t(Y)\t{a}\t{b}\tc\tp\t{g}\n" for g, a, b in SNLI_ROWS)
    write(tmp_path / "snli" / "snli_1.0_test.txt", header + body, gz=True)
    test = datasets.load("snli", "test", str(tmp_path))
    assert test.columns["label"] == [1, 2] and test.dropped == {"no_gold_label": 1}


def test_snli_tsv_with_extra_column_and_bad_label(tmp_path):
    path = tmp_path / "snli" / "dev.tsv"
    write(path, 'gold_label\tsentence1\tsentence2\tsource_file\nentailment\tA "b\tC.\tx\n')
    assert datasets.load("snli", "dev", str(tmp_path)).columns["text_a"] == ['A "b']
    write(path, "gold_label\tsentence1\tsentence2\nentails\tA.\tB.\n")
    with pytest.raises(DataFormatError, match="field 'gold_label': unknown label 'entails'"):
        datasets.load("snli", "dev", str(tmp_path))
    write(path, "gold_label\tsentence1\tsentence2\nneutral\tA.\t\n")
    with pytest.raises(DataFormatError, match="line 2, field 'sentence2': empty text"):
        datasets.load("snli", "dev", str(tmp_path))


def test_snli_train_falls_back_to_sample_with_warning(tmp_path, caplog):
    write(tmp_path / "snli" / "train_sample_20k.tsv",
          "gold_label\tsentence1\tsentence2\tsource_file\nneutral\tA.\tB.\tx\n", gz=True)
    with caplog.at_level(logging.WARNING):
        train = datasets.load("snli", "train", str(tmp_path))
    assert train.info["sample"] is True and train.source[0].endswith("train_sample_20k.tsv.gz")
    assert "SAMPLE" in caplog.text
    write(tmp_path / "snli" / "snli_1.0_train.jsonl", snli_jsonl(SNLI_ROWS))
    full = datasets.load("snli", "train", str(tmp_path))
    assert full.info["sample"] is False and full.num_rows == 2


def test_snli_json_missing_field(tmp_path):
    write(tmp_path / "snli" / "snli_1.0_dev.jsonl", '{"gold_label": "neutral", "sentence1": "a"}\n')
    with pytest.raises(DataFormatError, match="line 1, field 'sentence2': missing field"):
        datasets.load("snli", "dev", str(tmp_path))


# ----------------------------------------------------------------------------- IMDB
REVIEWS = [("train", "pos", 0, 9, "Great<br /><br />film."), ("train", "pos", 1, 8, "Fine."),
           ("train", "neg", 0, 2, "Bad."), ("train", "neg", 1, 1, "Awful."),
           ("test", "pos", 0, 10, "Wow."), ("test", "neg", 0, 3, "Meh.")]


def imdb_folder(root):
    for split, label, i, rating, text in REVIEWS:
        write(root / "imdb" / "aclImdb" / split / label / f"{i}_{rating}.txt", text)


def imdb_jsonl(root, rows=REVIEWS):
    lines = [json.dumps({"split": s, "label": lab, "id": i, "rating": r, "text": t})
             for s, lab, i, r, t in reversed(rows)]
    lines.append(json.dumps({"split": "unsup", "label": None, "id": 0, "text": "x"}))
    write(root / "imdb" / "aclImdb_v1_labeled.jsonl", "\n".join(lines) + "\n", gz=True)


def test_imdb_folder_and_jsonl_agree(tmp_path):
    imdb_folder(tmp_path / "a")
    imdb_jsonl(tmp_path / "b")
    for split in ("train", "test"):
        folder = datasets.load("imdb", split, str(tmp_path / "a"))
        jsonl = datasets.load("imdb", split, str(tmp_path / "b"))
        assert folder.columns == jsonl.columns
    train = datasets.load("imdb", "train", str(tmp_path / "b"))
    assert train.columns["text"] == ["Great film.", "Fine.", "Bad.", "Awful."]
    assert train.columns["label"] == [1, 1, 0, 0]
    raw = datasets.load("imdb", "train", str(tmp_path / "b"), remove_br=False)
    assert raw.columns["text"][0] == "Great<br /><br />film."


def test_imdb_dev_is_a_deterministic_class_balanced_slice(tmp_path):
    imdb_jsonl(tmp_path)
    dev = datasets.load("imdb", "dev", str(tmp_path), dev_size=2)
    train = datasets.load("imdb", "train", str(tmp_path), dev_size=2)
    assert dev.columns["text"] == ["Fine.", "Awful."]  # the largest id of each class
    assert train.columns["text"] == ["Great film.", "Bad."]
    with pytest.raises(ValueError, match="no dev split"):
        datasets.load("imdb", "dev", str(tmp_path))
    with pytest.raises(ValueError, match="even"):
        datasets.load("imdb", "dev", str(tmp_path), dev_size=3)


def test_imdb_bad_input(tmp_path):
    imdb_jsonl(tmp_path, REVIEWS + [("train", "meh", 5, 5, "x")])
    with pytest.raises(DataFormatError, match="field 'label': unknown label 'meh'"):
        datasets.load("imdb", "train", str(tmp_path))
    imdb_folder(tmp_path / "f")
    write(tmp_path / "f" / "imdb" / "aclImdb" / "test" / "neg" / "notes.txt", "x")
    with pytest.raises(DataFormatError, match=r"notes\.txt: file name"):
        datasets.load("imdb", "test", str(tmp_path / "f"))


# ----------------------------------------------------------------------------- Flickr8k
def flickr_dir(root, *, images=("a.jpg", "b.jpg"), extra_line=""):
    text = root / "flickr8k" / "text"
    lines = [f"{img}#{k}\t{img[0].upper()} caption {k} ." for img in ("a.jpg", "b.jpg", "c.jpg")
             for k in range(5)]
    lines[5:10] = [f"b.jpg.1#{k}\tB caption {k} ." for k in range(5)]  # the .jpg.1 quirk
    write(text / "Flickr8k.token.txt", "\n".join(lines) + "\n" + extra_line)
    write(text / "Flickr_8k.trainImages.txt", "a.jpg\nb.jpg\nc.jpg\n")
    write(text / "Flickr_8k.devImages.txt", "a.jpg\n")
    write(text / "Flickr_8k.testImages.txt", "c.jpg\n")
    jpeg = tf.io.encode_jpeg(tf.zeros([8, 8, 3], tf.uint8)).numpy()
    for name in images:
        write(root / "flickr8k" / "images" / name, jpeg)
    return str(root)


def test_flickr8k_captions_quirk_and_missing_images(tmp_path, caplog):
    data_dir = flickr_dir(tmp_path)
    with caplog.at_level(logging.WARNING):
        train = datasets.load("flickr8k", "train", data_dir)
    assert train.columns["image_id"] == ["a.jpg", "b.jpg"]
    assert train.columns["captions"][1] == [f"B caption {k} ." for k in range(5)]
    assert train.dropped == {"missing_image": 1}
    assert train.info["missing_images"] == 1 and train.info["missing_image_examples"] == ["c.jpg"]
    assert train.info["renamed_ids"] == ["b.jpg.1"] and "c.jpg" in caplog.text
    kept = datasets.load("flickr8k", "train", data_dir, require_images=False)
    assert kept.num_rows == 3 and kept.dropped == {} and kept.info["missing_images"] == 1
    ex = next(iter(train.dataset))
    assert ex["captions"].shape == [5] and ex["image_path"].numpy().decode().endswith("a.jpg")


@pytest.mark.parametrize("extra, message", [
    ("d.jpg#0 no tab here\n", "found 1 tab-separated"),
    ("d.jpg#7\tx\n", "malformed key"),
    ("a.jpg#0\tagain\n", "appears twice"),
    ("d.jpg#0\t \n", "empty caption"),
    ("d.jpg#0\tonly one\n", r"image d\.jpg has captions \[0\]"),
])
def test_flickr8k_bad_token_lines(tmp_path, extra, message):
    with pytest.raises(DataFormatError, match=message):
        datasets.load("flickr8k", "dev", flickr_dir(tmp_path, extra_line=extra))


def test_flickr8k_split_list_image_without_captions(tmp_path):
    data_dir = flickr_dir(tmp_path)
    write(tmp_path / "flickr8k" / "text" / "Flickr_8k.testImages.txt", "c.jpg\nz.jpg\n")
    with pytest.raises(DataFormatError, match=r"testImages\.txt, line 2: image z\.jpg has no"):
        datasets.load("flickr8k", "test", data_dir)


def test_corrupt_image_is_named(tmp_path):
    good = tf.io.encode_jpeg(tf.fill([64, 64, 3], tf.constant(200, tf.uint8))).numpy()
    path = write(tmp_path / "broken.jpg", good[:len(good) // 2])
    with pytest.raises(DataFormatError, match=r"broken\.jpg, field 'image': corrupt image"):
        images.load_image(str(path))
    ok = write(tmp_path / "ok.jpg", good)
    with pytest.raises(DataFormatError, match=r"broken\.jpg"):
        list(images.image_batches([str(ok), str(ok), str(path)], batch_size=2))
    write(tmp_path / "text.jpg", "not an image")
    with pytest.raises(DataFormatError, match=r"text\.jpg, field 'image': not an image"):
        images.load_image(str(tmp_path / "text.jpg"))


def test_png_reads_like_the_same_pixels(tmp_path):
    pixels = tf.cast(tf.random.stateless_uniform([40, 30, 3], [1, 2], 0, 256, tf.int32),
                     tf.uint8)
    write(tmp_path / "a.png", tf.io.encode_png(pixels).numpy())
    png = images.load_image(str(tmp_path / "a.png"), 16, "caffe").numpy()
    expected = images.preprocess_caffe(tf.image.resize(pixels, [16, 16])).numpy()
    np.testing.assert_allclose(png, expected, atol=1e-4)
    gray = tf.io.encode_png(pixels[..., :1]).numpy()
    write(tmp_path / "g.png", gray)
    assert images.load_image(str(tmp_path / "g.png"), 16).shape == (16, 16, 3)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(tmp_path, monkeypatch):
    big = tf.io.encode_jpeg(tf.fill([2400, 1800, 3], tf.constant(90, tf.uint8))).numpy()
    path = write(tmp_path / "big.jpg", big)
    ratios = []
    decode = tf.io.decode_jpeg
    monkeypatch.setattr(tf.io, "decode_jpeg", lambda data, **kw: (ratios.append(kw["ratio"]),
                                                                  decode(data, **kw))[1])
    image = images.load_image(str(path), 224, "caffe")
    assert ratios == [8] and image.shape == (224, 224, 3)        # 1800 / 8 = 225 ≥ 224
    assert images.load_image(str(path), 500, "caffe").shape == (500, 500, 3)
    assert ratios[-1] == 2
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    big_png = write(tmp_path / "big.png",
                    tf.io.encode_png(tf.zeros([100, 50, 3], tf.uint8)).numpy())
    with pytest.raises(DataFormatError, match=r"big\.png, field 'image': 50 × 100 pixels is more"):
        images.load_image(str(big_png), 16)


# ----------------------------------------------------------------------------- load / inspect
def test_load_validates_name_split_and_options(sst_dir):
    assert datasets.names() == sorted(["sst5", "sst2", "glue_sst2", "mrpc", "snli", "imdb",
                                       "flickr8k"])
    with pytest.raises(ValueError, match="unknown dataset 'sst'"):
        datasets.load("sst", "train", sst_dir)
    with pytest.raises(ValueError, match="no split 'validation'"):
        datasets.load("sst2", "validation", sst_dir)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['phrase'\]"):
        datasets.load("sst2", "train", sst_dir, phrase=True)
    assert datasets.options("imdb") == {"dev_size": 0, "remove_br": True}


def test_dataset_schema(sst_dir):
    ds = datasets.load("sst5", "test", sst_dir).dataset
    assert ds.element_spec == {"text": tf.TensorSpec([], tf.string),
                               "label": tf.TensorSpec([], tf.int64)}
    assert int(ds.cardinality()) == 3


def test_inspect_reports_splits_and_errors(sst_dir, tmp_path):
    report, ok = inspect_dataset("sst2", sst_dir)
    assert ok and report["splits"]["dev"]["rows"] == 2
    assert report["splits"]["dev"]["dropped"] == {"neutral": 1}
    assert set(report["splits"]["dev"]["token_lengths"]["text"]) >= {"p50", "p95", "max"}
    report, ok = inspect_dataset("snli", str(tmp_path / "nothing"), ["dev"])
    assert not ok and "not found" in report["splits"]["dev"]["error"]
    assert parse_options("imdb", ["dev_size=10", "remove_br=false"]) == {
        "dev_size": 10, "remove_br": False}
    with pytest.raises(ValueError):
        parse_options("imdb", ["nope=1"])


# ----------------------------------------------------------------------------- TFDS offline
@pytest.mark.parametrize("name", ["mrpc", "snli", "imdb"])
def test_a_tfds_dataset_that_cannot_be_downloaded_is_one_line_at_once(name, tmp_path,
                                                                      monkeypatch):
    """No --data_dir, nothing in TFDS's data dir and its download hosts unreachable: one line
    naming both and what to do, without TFDS's minutes of retries."""
    import time

    from datasets import core
    from datasets.errors import DataUnavailableError

    from datasets.paths import ENV_VAR

    monkeypatch.delenv(ENV_VAR, raising=False)
    import tensorflow_datasets as tfds

    real_builder = tfds.builder  # an empty TFDS data dir of its own
    monkeypatch.setattr(tfds, "builder", lambda tfds_name, **kw: real_builder(
        tfds_name, data_dir=str(tmp_path / "tfds"), **kw))
    probed = []
    monkeypatch.setattr(core, "reachable", lambda host, *_: probed.append(host) or False)
    started = time.time()
    with pytest.raises(DataUnavailableError) as error:
        datasets.load(name, "test", None)
    message = str(error.value)
    assert time.time() - started < 10
    assert "\n" not in message and f"nor downloaded in {tmp_path / 'tfds'}" in message
    assert f"{', '.join(sorted(probed))} cannot be reached. Pass --data_dir" in message
    assert probed


def test_the_download_hosts_are_probed_together(tmp_path, monkeypatch):
    """MRPC has three hosts: offline with name lookups that hang, the wait is one probe's
    timeout, not three."""
    import time

    import tensorflow_datasets as tfds

    from datasets import core
    from datasets.errors import DataUnavailableError

    monkeypatch.setattr(core, "DOWNLOAD_PROBE_SECONDS", 1.0)
    real_builder = tfds.builder
    builder = real_builder("glue/mrpc", data_dir=str(tmp_path / "tfds"))
    assert len({url.split("/")[2] for url in builder.url_infos}) >= 2
    monkeypatch.setattr(core, "reachable", lambda host, port, timeout: time.sleep(timeout))
    started = time.time()
    with pytest.raises(DataUnavailableError, match="cannot be reached"):
        core._download("glue/mrpc", builder)
    assert time.time() - started < 1.9


def test_reachable_tells_a_listening_port_from_a_closed_one():
    import socket

    from datasets.core import reachable

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert reachable("127.0.0.1", port, timeout=5)
    assert not reachable("127.0.0.1", port, timeout=5)  # closed now: refused at once
    assert not reachable("no-such-host.invalid", 443, timeout=5)
