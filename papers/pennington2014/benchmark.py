r"""The benchmark table: analogies (semantic, syntactic, total), WordSim-353 and SimLex-999.

```bash
python -m papers.pennington2014.benchmark \
    --vectors=glove-6b-50d,word2vec-googlenews-300d-26k,word2vec-googlenews-300d-13k \
    --restrict=30000 --methods=add,mul --output_json=/tmp/pennington2014.json
```

Prints one markdown row per vector set and analogy method, with the published number beside
ours where one exists (:mod:`papers.pennington2014.table`), and writes the numbers, counts,
timings, hardware, package versions and git commit to ``--output_json`` (atomically). The
protocol is in :mod:`papers.pennington2014.benchmarks`.
"""

from __future__ import annotations

import os
import platform
import time

from absl import app, flags

from training import cli


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The program's flags, defined when it runs (importing the module for its functions
    defines none, so several such modules can be imported in one process)."""
    flags.DEFINE_list("vectors", ["glove-6b-50d", "word2vec-googlenews-300d-26k",
                                  "word2vec-googlenews-300d-13k"],
                      "vector sets (names or files), comma-separated", flag_values=flag_values)
    flags.DEFINE_integer("restrict", 30000,
                         "the vocabulary: the first N words of each set (0: all)",
                         flag_values=flag_values)
    flags.DEFINE_list("methods", ["add", "mul"], "analogy methods: add (3CosAdd), mul (3CosMul)",
                      flag_values=flag_values)
    flags.DEFINE_string("output_json", None, "also write the results here", flag_values=flag_values)

FLAGS = flags.FLAGS


@cli.main_with_user_errors
def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    unknown = [m for m in FLAGS.methods if m not in ("add", "mul")]
    if unknown or not FLAGS.methods:
        raise app.UsageError(f"--methods takes add and/or mul, got {','.join(FLAGS.methods)!r}")
    if FLAGS.restrict < 0 or not FLAGS.vectors:
        raise app.UsageError("--restrict must be 0 (all) or more, and --vectors non-empty")
    cli.import_tensorflow()
    from datasets import word_vectors
    from papers.pennington2014 import table
    from training import io

    missing = [v for v in FLAGS.vectors if v not in word_vectors.SOURCES and not os.path.exists(v)]
    if missing:
        raise app.UsageError(f"--vectors: {', '.join(missing)} is neither a file nor one of "
                             f"{', '.join(word_vectors.SOURCES)}")
    started, results = time.perf_counter(), []
    print(table.HEADER)
    for source in FLAGS.vectors:
        results.append(table.evaluate_set(source, FLAGS.restrict or None, FLAGS.methods))
        print("\n".join(table.markdown_rows(results[-1])), flush=True)
    if FLAGS.output_json:
        io.atomic_write_json(FLAGS.output_json, {
            "restrict": FLAGS.restrict, "results": results,
            "wall_seconds": time.perf_counter() - started, "git_commit": io.git_commit(),
            "cpu": io.cpu_name(), "python": platform.python_version(),
            "packages": io.package_versions()})
        print(f"wrote {FLAGS.output_json}")
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
