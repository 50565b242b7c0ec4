r"""How much of SNLI a source of word vectors covers, as a markdown table.

For each split the task reads (the train sample, dev, test), tokenized as the task does
(lower case): the share of tokens and of distinct words that have a vector in each source. The
words without one get vectors as Section 3 says (``papers/rocktaschel2016/task.py``).

Example:

    python -m papers.rocktaschel2016.coverage --data_dir=../shared/data \
        --embeddings=glove-6b-50d,word2vec-googlenews-300d-26k
"""

from __future__ import annotations

import collections
from typing import Iterable

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The program's flags, defined when it runs (importing the module for its functions
    defines none, so several such modules can be imported in one process)."""
    flags.DEFINE_string("data_dir", None, "The raw datasets (default: $KERAS_PAPERS_DATA_DIR).",
                        flag_values=flag_values)
    flags.DEFINE_list("embeddings", ["glove-6b-50d", "word2vec-googlenews-300d-26k"],
                      "Word vector sources (names of datasets.word_vectors or files).",
                      flag_values=flag_values)
    flags.DEFINE_integer("missing", 12, "Also print each source's most frequent words without a "
                         "vector in train.", flag_values=flag_values)


def coverage(tokens: Iterable[str], vocabulary) -> dict[str, float]:
    """``tokens``/``types`` (counts), the percentage of each found in ``vocabulary``, and
    ``missing``: the words not found, most frequent first, with their counts."""
    counts = collections.Counter(tokens)
    found = {t: n for t, n in counts.items() if t in vocabulary}
    total = sum(counts.values())
    return {"tokens": total, "types": len(counts),
            "tokens_found": 100.0 * sum(found.values()) / max(total, 1),
            "types_found": 100.0 * len(found) / max(len(counts), 1),
            "missing": [(t, n) for t, n in counts.most_common() if t not in found]}


def main(argv):
    del argv
    import datasets
    from datasets import text, word_vectors
    from datasets.paths import require_data_dir

    data_dir = require_data_dir(FLAGS.data_dir, "snli")
    tokenizer = text.WordTokenizer(lowercase=True)
    sources = {name: word_vectors.load_vectors(name) for name in FLAGS.embeddings}
    print("| split | tokens | words | " + " | ".join(
        f"{name}: tokens / words found (%)" for name in sources) + " |")
    print("|---|---:|---:|" + "---:|" * len(sources))
    missing = {}
    for split in ("train", "dev", "test"):
        columns = datasets.load("snli", split, data_dir).columns
        tokens = [t for sentence in tokenizer.tokenize_py(columns["text_a"] + columns["text_b"])
                  for t in sentence]
        cells = [coverage(tokens, vectors.index) for vectors in sources.values()]
        print(f"| {split} | {cells[0]['tokens']:,} | {cells[0]['types']:,} | " + " | ".join(
            f"{c['tokens_found']:.1f} / {c['types_found']:.1f}" for c in cells) + " |")
        if split == "train":
            missing = {name: c["missing"][:FLAGS.missing] for name, c in zip(sources, cells)}
    for name, words in missing.items():
        print(f"{name}, most frequent train words without a vector: "
              + ", ".join(f"{t!r} ({n:,})" for t, n in words))


if __name__ == "__main__":
    define_flags()
    app.run(main)
