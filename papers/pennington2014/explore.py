r"""Explore word vectors from the command line: neighbours, similarity, analogies, orientation,
pictures. One action per command:

```bash
python -m papers.pennington2014.explore --vectors=glove-6b-50d --neighbours=king,frog
python -m papers.pennington2014.explore --similarity="cat,dog;cat,car"
python -m papers.pennington2014.explore --analogy=man,king,woman --method=mul
python -m papers.pennington2014.explore --orientation=superb,dreadful,table
python -m papers.pennington2014.explore --plot="king,queen,man,woman;paris,france,rome,italy" \
    --projection=tsne --output=/tmp/words.png
```

``--vectors`` is ``glove-6b-50d`` (default), ``word2vec-googlenews-300d-26k``,
``word2vec-googlenews-300d-13k`` or a vectors file (GloVe text, word2vec text or binary, gensim
``.kv``). ``--restrict=N`` searches only the first N words (the most frequent, for sources in
frequency order). A mistake (an unknown word, a bad flag value) ends with one line,
``explore.py: error: …``, and exit status 2.
"""

from __future__ import annotations

from absl import app, flags

from training import cli

ACTIONS = ("neighbours", "similarity", "analogy", "orientation", "plot")


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The program's flags, defined when it runs (importing the module for its functions
    defines none, so several such modules can be imported in one process)."""
    flags.DEFINE_string("vectors", "glove-6b-50d", "glove-6b-50d, word2vec-googlenews-300d-26k, "
                        "word2vec-googlenews-300d-13k, or a vectors file", flag_values=flag_values)
    flags.DEFINE_list("neighbours", None, "words whose nearest neighbours (by cosine) to print",
                      flag_values=flag_values)
    flags.DEFINE_string("similarity", None, "pairs 'w1,w2;w3,w4': print their cosines",
                        flag_values=flag_values)
    flags.DEFINE_string("analogy", None, "'a,b,c' (a is to b as c is to ?), several joined by ';'",
                        flag_values=flag_values)
    flags.DEFINE_enum("method", "add", ["add", "mul"], "analogies by 3CosAdd or 3CosMul",
                      flag_values=flag_values)
    flags.DEFINE_list("orientation", None,
                      "words whose semantic orientation (SO-A, cosine) to print",
                      flag_values=flag_values)
    flags.DEFINE_list("positive", None, "positive seed words (default: Turney & Littman's seven)",
                      flag_values=flag_values)
    flags.DEFINE_list("negative", None, "negative seed words (default: Turney & Littman's seven)",
                      flag_values=flag_values)
    flags.DEFINE_string("plot", None, "words to picture in 2-D; groups (one colour each) joined "
                        "by ';'", flag_values=flag_values)
    flags.DEFINE_enum("projection", "pca", ["pca", "tsne"], "the picture's projection",
                      flag_values=flag_values)
    flags.DEFINE_string("output", None, "the PNG that --plot writes", flag_values=flag_values)
    flags.DEFINE_integer("k", 10, "how many neighbours or answers", flag_values=flag_values)
    flags.DEFINE_integer("restrict", 0, "search only the first N words (0: all)",
                         flag_values=flag_values)
    flags.DEFINE_integer("seed", 0, "t-SNE's seed", flag_values=flag_values)
    flags.DEFINE_float("perplexity", 0.0, "t-SNE's perplexity (0: min(30, (words - 1) / 3))",
                       flag_values=flag_values)

FLAGS = flags.FLAGS


def _groups(text: str, flag: str, size: int | None = None) -> list[list[str]]:
    """``'a,b;c,d'`` as ``[[a, b], [c, d]]``; with ``size``, every group must have that many."""
    groups = [[w.strip() for w in part.split(",") if w.strip()] for part in text.split(";")]
    groups = [g for g in groups if g]
    if not groups:
        raise app.UsageError(f"--{flag} is empty")
    for group in groups:
        if size is not None and len(group) != size:
            raise app.UsageError(f"--{flag}: {','.join(group)!r} has {len(group)} words, "
                                 f"expected {size}")
    return groups


def _check_flags() -> str:
    """The one action asked for; flag mistakes raise ``UsageError`` before anything loads."""
    chosen = [a for a in ACTIONS if FLAGS[a].value]
    if len(chosen) != 1:
        raise app.UsageError(f"give exactly one of --{', --'.join(ACTIONS)} (got "
                             f"{', '.join('--' + a for a in chosen) or 'none'})")
    if FLAGS.k < 1:
        raise app.UsageError(f"--k must be at least 1, got {FLAGS.k}")
    if FLAGS.restrict < 0:
        raise app.UsageError(f"--restrict must be 0 (all words) or more, got {FLAGS.restrict}")
    if FLAGS.perplexity < 0:
        raise app.UsageError(f"--perplexity must be positive (0: automatic), got "
                             f"{FLAGS.perplexity:g}")
    if chosen[0] == "plot" and not FLAGS.output:
        raise app.UsageError("--plot needs --output=FILE.png")
    if chosen[0] == "plot" and not FLAGS.output.endswith(".png"):
        raise app.UsageError(f"--output must name a .png file, got {FLAGS.output!r}")
    if chosen[0] != "orientation" and (FLAGS.positive or FLAGS.negative):
        raise app.UsageError("--positive and --negative go with --orientation")
    if chosen[0] in ("similarity", "analogy"):
        _groups(FLAGS[chosen[0]].value, chosen[0], 2 if chosen[0] == "similarity" else 3)
    if chosen[0] == "plot":
        words = [w for group in _groups(FLAGS.plot, "plot") for w in group]
        if len(set(words)) != len(words):
            raise app.UsageError(f"--plot repeats a word: {FLAGS.plot!r}")
    return chosen[0]


def _searched(emb, restrict: int | None) -> str:
    return f"{min(restrict or len(emb), len(emb)):,} words of {emb.name}"


def _neighbours(emb, restrict) -> list[str]:
    lines = []
    for word in FLAGS.neighbours:
        found = emb.neighbours(word, FLAGS.k, restrict)
        lines.append(f"nearest to {word!r} by cosine among {_searched(emb, restrict)}:")
        lines += [f"  {rank:3d}  {other:<24} {cos:+.4f}"
                  for rank, (other, cos) in enumerate(found, 1)]
    return lines


def _similarity(emb) -> list[str]:
    return [f"cos({word1!r}, {word2!r}) = {emb.similarity(word1, word2):+.4f}"
            for word1, word2 in _groups(FLAGS.similarity, "similarity", 2)]


def _analogy(emb, restrict) -> list[str]:
    from papers.pennington2014.analogy import analogy

    name = {"add": "3CosAdd", "mul": "3CosMul"}[FLAGS.method]
    lines = []
    for a, b, c in _groups(FLAGS.analogy, "analogy", 3):
        found = analogy(emb, a, b, c, k=FLAGS.k, method=FLAGS.method, restrict=restrict)
        lines.append(f"{a} : {b} :: {c} : ?  ({name}, {_searched(emb, restrict)}, question "
                     "words excluded)")
        lines += [f"  {rank:3d}  {word:<24} {score:+.4f}"
                  for rank, (word, score) in enumerate(found, 1)]
    return lines


def _orientation(emb) -> list[str]:
    from papers.pennington2014 import orientation

    positive = FLAGS.positive or orientation.POSITIVE
    negative = FLAGS.negative or orientation.NEGATIVE
    found = [orientation.semantic_orientation(emb, word, positive, negative)
             for word in FLAGS.orientation]
    return [f"SO-A with cosine (Turney & Littman 2003), {emb.name}",
            f"  positive seeds: {', '.join(positive)}",
            f"  negative seeds: {', '.join(negative)}",
            *(f"  {so.word:<20} {so.score:+.4f}  (Σ cos positive {so.positive:+.4f}, "
              f"Σ cos negative {so.negative:+.4f})" for so in found)]


def _plot(emb) -> list[str]:
    from papers.pennington2014 import projection

    groups = _groups(FLAGS.plot, "plot")
    words = [w for group in groups for w in group]
    numbers = [n for n, group in enumerate(groups) for _ in group]
    try:
        picture = projection.project(emb, words, FLAGS.projection, seed=FLAGS.seed,
                                     perplexity=FLAGS.perplexity or None)
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    projection.plot(picture, FLAGS.output, groups=numbers, title=emb.name)
    return [f"wrote {FLAGS.output}: {picture.summary}"]


@cli.main_with_user_errors
def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    action = _check_flags()
    cli.import_tensorflow()  # datasets imports it; hide its start-up lines
    from papers.pennington2014.vectors import Embeddings, UnknownWordError

    try:
        emb = Embeddings.load(FLAGS.vectors)
        restrict = FLAGS.restrict or None
        if action == "neighbours":
            lines = _neighbours(emb, restrict)
        elif action == "similarity":
            lines = _similarity(emb)
        elif action == "analogy":
            lines = _analogy(emb, restrict)
        elif action == "orientation":
            lines = _orientation(emb)
        else:
            lines = _plot(emb)
    except UnknownWordError as e:
        raise cli.UserError(str(e)) from None
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
