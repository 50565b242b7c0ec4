"""Stanford Sentiment Treebank (Socher et al., EMNLP 2013): SST-5 and SST-2 from the PTB trees.

Format parsed: ``trees/{train,dev,test}.txt`` of the ``trainDevTestTrees_PTB`` release (optionally
gzip'd), one sentence per line as a Penn-Treebank-style tree in which every node carries a
sentiment label 0-4, e.g. ``(3 (2 (2 The) (2 Rock)) (4 (2 is) ...))``. The root's label is the
sentence label.

- ``sst5``: every sentence, labels 0-4 (very negative ... very positive):
  8,544 / 1,101 / 2,210 sentences.
- ``sst2``: sentences labelled 2 (neutral) dropped, 0/1 → 0 (negative), 3/4 → 1 (positive):
  6,920 / 872 / 1,821 sentences (``dropped["neutral"]`` counts the rest).
- ``phrases=True`` (train split only; dev and test are always whole sentences): every labelled
  subtree of the train trees (the sentence itself, every phrase and every word) becomes a row,
  deduplicated by text (the first occurrence is kept, ``dropped["duplicate_phrase"]`` counts the
  others); for SST-2 neutral phrases are dropped too. This is the phrase-level training set of
  Socher et al. (2013) and Tai et al. (2015).

Text is the tree's leaves joined by single spaces (the treebank is already tokenized). With
``unescape_ptb=True`` (default) the PTB escapes are undone so the text reads as plain English and
matches GloVe's vocabulary: ``-LRB-``/``-RRB-`` → ``(``/``)`` (likewise ``-LSB-``, ``-RSB-``,
``-LCB-``, ``-RCB-`` → ``[``, ``]``, ``{``, ``}``), ``\\/`` → ``/``, ``\\*`` → ``*``, and the quote
tokens ``````` and ``''`` → ``"``. Case is kept; lowercasing belongs to the tokenizer.

There is no TFDS copy of the trees, so these datasets need ``data_dir`` (GLUE's phrase-level
SST-2 is the separate dataset ``glue_sst2``).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterator

from datasets import files
from datasets.core import LABEL, TEXT, DatasetInfo, LoadedSplit
from datasets.errors import DataFormatError
from datasets.paths import require_data_dir

SST5_LABELS = ("very negative", "negative", "neutral", "positive", "very positive")
SST2_LABELS = ("negative", "positive")

PTB_TOKENS = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{",
              "-RCB-": "}", "``": '"', "''": '"'}
PTB_BACKSLASH = re.compile(r"\\([/*])")
# Tokens are separated by ASCII spaces only: a word may contain a no-break space ("8\xa01\/2").
_TREE_TOKEN = re.compile(r"\(|\)|[^ \t\r\n()]+")


@dataclasses.dataclass(slots=True)
class Tree:
    """A node of a sentiment tree: a label and either children or a word (a leaf)."""

    label: int
    children: list["Tree"] = dataclasses.field(default_factory=list)
    word: str | None = None

    def leaves(self) -> list[str]:
        """The words under this node, left to right."""
        words, stack = [], [self]
        while stack:
            node = stack.pop()
            if node.word is not None:
                words.append(node.word)
            stack.extend(reversed(node.children))
        return words

    def subtrees(self) -> Iterator["Tree"]:
        """Every node, this one first (pre-order)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def text(self) -> str:
        return " ".join(self.leaves())


def unescape_ptb(token: str) -> str:
    """Undoes the PTB escapes of one token: ``-LRB-`` → ``(``, ``\\/`` → ``/``, ``````→ ``"``."""
    if token in PTB_TOKENS:
        return PTB_TOKENS[token]
    return PTB_BACKSLASH.sub(r"\1", token) if "\\" in token else token


def parse_tree(line: str, *, path: str = "<string>", line_number: int | None = None,
               unescape: bool = True) -> Tree:
    """Parses one PTB-format sentiment tree.

    Args:
        line: e.g. ``"(3 (2 It) (4 (4 rocks) (2 .)))"``.
        path, line_number: where the line comes from, for error messages.
        unescape: undo the PTB escapes of the words (see the module docstring).

    Returns:
        The root :class:`Tree`.

    Raises:
        DataFormatError: unbalanced parentheses, a label that is not an integer 0-4, a node
            with neither word nor children, or text after the root.

    Example:

    ```python
    tree = parse_tree("(3 (2 It) (4 (4 rocks) (2 .)))")
    tree.label, tree.text()   # (3, "It rocks .")
    ```
    """
    def error(message: str) -> DataFormatError:
        return DataFormatError(message, path=path, line=line_number, field="tree")

    tokens = _TREE_TOKEN.findall(line)
    stack: list[Tree] = []
    root = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "(":
            if root is not None:
                raise error("text after the end of the tree")
            if i + 1 >= len(tokens) or tokens[i + 1] in ("(", ")"):
                raise error("'(' not followed by a label")
            label = tokens[i + 1]
            if label not in ("0", "1", "2", "3", "4"):
                raise error(f"label {label!r} is not an integer 0-4")
            node = Tree(int(label))
            if stack:
                if stack[-1].word is not None:
                    raise error("a node has both a word and children")
                stack[-1].children.append(node)
            stack.append(node)
            i += 2
            continue
        if token == ")":
            if not stack:
                raise error("unbalanced ')'")
            node = stack.pop()
            if node.word is None and not node.children:
                raise error("empty node (no word, no children)")
            if not stack:
                root = node
        else:
            if not stack or root is not None:
                raise error(f"word {token!r} outside a node")
            node = stack[-1]
            if node.word is not None or node.children:
                raise error(f"unexpected word {token!r}: a node has one word or children")
            node.word = unescape_ptb(token) if unescape else token
        i += 1
    if stack or root is None:
        raise error("unbalanced '(' (tree not closed)")
    return root


def read_trees(path: str, *, unescape: bool = True) -> list[Tree]:
    """Parses every line of a PTB trees file (``.gz`` allowed)."""
    return [parse_tree(line, path=path, line_number=n, unescape=unescape)
            for n, line in files.read_lines(path)]


def trees_path(data_dir: str, split: str) -> str:
    """The trees file of ``split`` under ``data_dir`` (see datasets/README.md)."""
    return files.find_file(files.join(data_dir, "sst"),
                           [f"trees/{split}.txt", f"trainDevTestTrees_PTB/trees/{split}.txt"],
                           f"SST trees ({split})")


def _load(name: str, split: str, data_dir: str | None, *, binary: bool, phrases: bool,
          unescape_ptb: bool) -> LoadedSplit:
    data_dir = require_data_dir(data_dir, name)
    path = trees_path(data_dir, split)
    trees = read_trees(path, unescape=unescape_ptb)
    use_phrases = phrases and split == "train"
    texts, labels, dropped = [], [], {}
    seen = set()
    for tree in trees:
        for node in (tree.subtrees() if use_phrases else [tree]):
            if binary and node.label == 2:
                dropped["neutral"] = dropped.get("neutral", 0) + 1
                continue
            text = node.text()
            if use_phrases:
                if text in seen:
                    dropped["duplicate_phrase"] = dropped.get("duplicate_phrase", 0) + 1
                    continue
                seen.add(text)
            texts.append(text)
            labels.append(int(node.label >= 3) if binary else node.label)
    return LoadedSplit(
        name=name, split=split, columns={"text": texts, "label": labels},
        schema={"text": TEXT, "label": LABEL},
        label_names=SST2_LABELS if binary else SST5_LABELS, dropped=dropped, source=[path],
        info={"trees": len(trees), "phrases": use_phrases})


def load_sst5(split: str, data_dir: str | None, *, phrases: bool = False,
              unescape_ptb: bool = True) -> LoadedSplit:
    """SST-5: ``{"text": tf.string, "label": tf.int64 (0-4)}``; see the module docstring."""
    return _load("sst5", split, data_dir, binary=False, phrases=phrases,
                 unescape_ptb=unescape_ptb)


def load_sst2(split: str, data_dir: str | None, *, phrases: bool = False,
              unescape_ptb: bool = True) -> LoadedSplit:
    """SST-2: ``{"text": tf.string, "label": tf.int64 (0 neg, 1 pos)}``, neutral dropped."""
    return _load("sst2", split, data_dir, binary=True, phrases=phrases,
                 unescape_ptb=unescape_ptb)


SST5 = DatasetInfo("sst5", load_sst5, ("train", "dev", "test"), ("text",), None,
                   "SST-5 sentences (or train phrases) from the PTB trees, labels 0-4")
SST2 = DatasetInfo("sst2", load_sst2, ("train", "dev", "test"), ("text",), None,
                   "SST-2 sentences (or train phrases) from the PTB trees, neutral dropped")
