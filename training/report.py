"""Paper tables from the runs under a folder: the paper's number beside ours.

:func:`collect` finds every run below a folder (local or ``gs://``): a finished run has a
``results.json`` with ``status: ok``; a folder with a ``config.json`` but no finished results is
a run that did not finish (still training, killed, or diverged: ``diverged.json``).
:func:`paper_table` prints one markdown row per *setting*, split and metric. A setting is
everything in a run's identity (``training/run_dir.py``) except the seed: two runs are pooled
into one "mean ± std over seeds" only when their experiment, every hyperparameter, precision,
evaluation interval, fixed shapes and data are equal and their seeds differ. A second run of the
same setting and seed is left out (the newest is kept), and so is every run that did not
finish; a note under the table counts and names them, and names a finished run whose later
extension diverged (shown at the length it finished). Where a task reports a 95 % interval over
the test items (``<metric>/ci95``, a bootstrap over test images for captioning), it follows the
value: the interval of a single run, or the mean half-width over the runs. Throughput and
training time cover all of a run's training segments (a resumed run included) and exclude
evaluation.

Reading results needs no TensorFlow (``training.io`` reads local files directly).
"""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from typing import Any

from training import io


def _legacy_identity(run: dict) -> dict:
    """The identity of a results.json written before identities were recorded."""
    config = run.get("config", {})
    params = dict(run.get("params", {}))
    params.setdefault("batch_size", run.get("global_batch_size"))
    for key in ("epochs", "train_steps", "clip_norm", "patience"):
        if config.get(key) is not None:
            params[key] = config[key]
    return {"experiment": run["experiment"], "params": params, "seed": config.get("seed", 0),
            "mixed_precision": config.get("mixed_precision", "float32"),
            "eval_every": config.get("eval_every", 0),
            "static_shapes": config.get("static_shapes", False), "data": {}}


def collect(results_dir: str) -> list[dict]:
    """Every run below ``results_dir``: its record with ``path`` and ``status``.

    ``status`` is ``"ok"`` (``results.json`` of a finished run, with its ``identity``),
    ``"diverged"`` or ``"unfinished"`` (a ``config.json`` without finished results), or
    ``"malformed"`` (a ``results.json`` or ``config.json`` that is not a run's record:
    ``problem`` says why; ``experiment`` is ``None`` where it cannot be read).
    """
    if not io.isdir(results_dir):
        raise FileNotFoundError(f"--results_dir={results_dir} is not a directory")
    runs = []
    for root, dirs, files in io.walk(results_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if "results.json" in files:
            path = os.path.join(root, "results.json")
            run, problem = _read_record(path)
            if problem:
                runs.append(_malformed(run, path, problem))
                continue
            if run.get("status") == "ok":
                run["path"] = path
                run["extension_diverged"] = ("config.json" in files and
                                             _extension_diverged(os.path.join(root,
                                                                              "config.json")))
                runs.append(run)
                continue
        if "config.json" in files:
            path = os.path.join(root, "config.json")
            config, problem = _read_record(path, finished=False)
            if problem:
                runs.append(_malformed(config, path, problem))
                continue
            status = "diverged" if "diverged.json" in files else "unfinished"
            runs.append({"experiment": config["experiment"], "status": status, "path": path})
    return runs


def _extension_diverged(config_path: str) -> bool:
    """Whether the last extension of a finished run diverged (its ``results.json`` is of the
    length before it: :func:`training.run_dir.revert_diverged_extension`)."""
    try:
        extensions = io.read_json(config_path).get("extensions") or [{}]
        return bool(extensions[-1].get("diverged"))
    except (ValueError, OSError, AttributeError, TypeError):
        return False


def _read_record(path: str, finished: bool = True) -> tuple[Any, str | None]:
    """A run's ``results.json`` (``finished``) or ``config.json``, and what is wrong with it
    (``None``: nothing)."""
    try:
        record = io.read_json(path)
    except (ValueError, OSError) as e:
        return None, f"not readable JSON: {str(e).replace(path + ': ', '')}"
    if not isinstance(record, dict):
        return record, f"a JSON {type(record).__name__}, not a run's record"
    if not isinstance(record.get("experiment"), str):
        return record, "no 'experiment'"
    if not finished or record.get("status") != "ok":
        return record, None
    metrics = record.get("metrics")
    if not (isinstance(metrics, dict) and metrics
            and all(isinstance(m, dict) for m in metrics.values())):
        return record, "no 'metrics' per split"
    try:
        record.setdefault("identity", _legacy_identity(record))
    except (AttributeError, TypeError) as e:
        return record, f"an unreadable identity ({e})"
    identity = record["identity"]
    if not (isinstance(identity, dict) and isinstance(identity.get("params"), dict)
            and "seed" in identity):
        return record, "no 'identity' with its params and seed"
    return record, None


def _malformed(record: Any, path: str, problem: str) -> dict:
    experiment = record.get("experiment") if isinstance(record, dict) else None
    return {"experiment": experiment if isinstance(experiment, str) else None,
            "status": "malformed", "path": path, "problem": problem}


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def _setting_key(identity: dict) -> str:
    import json

    return json.dumps({k: v for k, v in identity.items() if k != "seed"}, sort_keys=True)


def _setting_label(exp, identity: dict) -> str:
    """What a setting changes from the registered row: hyperparameters and loop settings."""
    defaults = io.to_json(dict(exp.hparams))
    changed = [f"{k}={v}" for k, v in sorted(identity["params"].items())
               if defaults.get(k, v) != v]
    for key, default in (("mixed_precision", "float32"), ("eval_every", 0),
                         ("static_shapes", False)):
        if identity.get(key, default) != default:
            changed.append(f"{key}={identity[key]}")
    return ", ".join(changed)


def paper_table(paper: str, experiments, runs: list[dict], results_dir: str = "") -> str:
    """A markdown table of ``paper`` (see the module docstring), with the notes under it."""
    names = {exp.name for exp in experiments}
    mine = [run for run in runs if run["experiment"] in names]
    # a record that names no experiment could be any paper's: every table names it
    unreadable = [run for run in runs if run["status"] == "malformed" and
                  run["experiment"] is None]
    if not mine and not unreadable:
        return f"no runs of {paper} under {results_dir or 'the folder'}"
    lines = [f"## {paper}: paper vs ours (runs under {results_dir})", "",
             "| experiment | split | metric | paper | ours (mean ± std) | seeds | "
             "train ex/s | train s |",
             "|---|---|---|---|---|---|---|---|"]
    left_out: dict[str, list[str]] = defaultdict(list)
    for run in mine + unreadable:
        if run["status"] == "malformed":
            left_out["malformed"].append(f"{run['path']} ({run['problem']})")
        elif run["status"] != "ok":
            left_out[run["status"]].append(os.path.dirname(run["path"]))
    for exp in experiments:
        settings: dict[str, dict[int, dict]] = defaultdict(dict)
        labels: dict[str, str] = {}
        data_ids: dict[str, str] = {}
        for run in sorted((r for r in mine if r["experiment"] == exp.name and
                           r["status"] == "ok"), key=lambda r: r["path"]):
            key = _setting_key(run["identity"])
            labels[key] = _setting_label(exp, run["identity"])
            data_ids.setdefault(key, str(sorted(run["identity"].get("data", {}).items())))
            seed = run["identity"]["seed"]
            if seed in settings[key]:
                older = settings[key][seed]
                if _mtime(run) < _mtime(older):
                    older, run = run, older
                left_out["duplicate seed"].append(os.path.dirname(older["path"]))
            settings[key][seed] = run
        by_label = defaultdict(list)
        for key in settings:
            by_label[labels[key]].append(key)
        for label in sorted(by_label) or [""]:
            keys = by_label.get(label, [None])
            for n, key in enumerate(keys):
                name = exp.name + (f" ({label})" if label else "")
                if len(keys) > 1:
                    name += f" [data {n + 1}]"
                lines += _rows(exp, name, list(settings[key].values()) if key else [])
    notes = []
    what = {"unfinished": "did not finish (still training, or stopped)",
            "diverged": "diverged (diverged.json)",
            "duplicate seed": "repeat a seed of the same setting (the newest is kept)",
            "malformed": "cannot be read"}
    for status, paths in left_out.items():
        notes.append(f"- left out: {len(paths)} run(s) that {what[status]}: {_shown(paths)}")
    extended = [os.path.dirname(r["path"]) for r in mine if r.get("extension_diverged")]
    if extended:
        notes.append(f"- note: {len(extended)} run(s) shown at the length they finished; an "
                     f"extension of them diverged (config.json lists it): {_shown(extended)}")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def _shown(paths: list[str]) -> str:
    return ", ".join(paths[:5]) + (", …" if len(paths) > 5 else "")


def _mtime(run: dict) -> float:
    try:
        return os.path.getmtime(run["path"])
    except OSError:
        return 0.0


def _rows(exp, name: str, exp_runs: list[dict]) -> list[str]:
    metrics = [exp.metric] + sorted({r.metric for r in exp.reported
                                     if r.metric and r.metric != exp.metric}
                                    | set(exp.table_metrics))
    splits = sorted({s for run in exp_runs for s in run["metrics"]} |
                    {r.split for r in exp.reported}, key=_split_order)
    seeds = ",".join(str(run["identity"]["seed"]) for run in
                     sorted(exp_runs, key=lambda r: r["identity"]["seed"]))
    lines = []
    for split in splits or ["dev"]:
        for metric in metrics:
            values = [run["metrics"][split][metric] for run in exp_runs
                      if metric in run["metrics"].get(split, {})]
            reported = [r for r in exp.reported
                        if r.split == split and (r.metric or exp.metric) == metric]
            if not values and not reported:
                continue
            paper = "; ".join(f"{r.value:g} ({r.source})" for r in reported) or "-"
            if not values:
                lines.append(f"| {name} | {split} | {metric} | {paper} | not run | 0 | - | - |")
                continue
            speed = [v for v in map(_examples_per_second, exp_runs) if v]
            train_s = [run["train_seconds"] for run in exp_runs]
            ours = mean_std(values) + _interval(exp_runs, split, metric)
            lines.append(f"| {name} | {split} | {metric} | {paper} | {ours} | "
                         f"{len(values)} ({seeds}) | "
                         f"{statistics.mean(speed) if speed else 0:.0f} | "
                         f"{statistics.mean(train_s):.0f} |")
    return lines


def _interval(runs: list[dict], split: str, metric: str) -> str:
    """The runs' 95 % intervals over the test items (``<metric>/ci95``, e.g. a bootstrap over
    test images), if the task reports them: the interval of one run, or the mean half-width."""
    intervals = [run["metrics"][split].get(f"{metric}/ci95") for run in runs
                 if split in run["metrics"]]
    intervals = [i for i in intervals if i]
    if not intervals:
        return ""
    if len(runs) == 1:
        return f" (95 % CI {intervals[0][0]:.2f}–{intervals[0][1]:.2f})"
    half = statistics.mean((high - low) / 2 for low, high in intervals)
    return f" (95 % CI ±{half:.2f} per run)"


def _split_order(split: str) -> int:
    order = {"train": 0, "dev": 1, "test": 2}
    return order.get(split, 3)


def _examples_per_second(run: dict) -> float | None:
    """Training examples per second over the whole run (evaluation excluded)."""
    if run.get("examples_per_second"):
        return run["examples_per_second"]
    if run.get("train_seconds"):
        return run["steps"] * run["global_batch_size"] / run["train_seconds"]
    return None


def beside_paper(experiment, metrics: dict[str, dict]) -> list[str]:
    """One line per number the paper reports for ``experiment``: ours beside it.

    ``metrics`` maps a split to its metrics (``results.json``'s ``metrics``); the paper's numbers
    on other splits are left out, a metric this run did not measure reads "not measured".
    """
    lines = []
    for r in experiment.reported:
        if r.split not in metrics:
            continue
        metric = r.metric or experiment.metric
        ours = metrics.get(r.split, {}).get(metric)
        ours = f"{ours:.2f}" if isinstance(ours, (int, float)) else "not measured"
        lines.append(f"{metric} on {r.split}: ours {ours}, paper {r.value:g} ({r.source})"
                     + (f" — {r.note}" if r.note else ""))
    return lines


def closing_summary(experiment, results: dict, model_dir: str) -> list[str]:
    """What a user reads when a run ends: the metrics beside the paper's, the time it took and
    where its outputs are (``results.json``, ``best/``, the pictures, the table command)."""
    from training.progress import duration

    metrics = results.get("metrics", {})
    lines = [f"{split}: " + ", ".join(_metric_text(k, v) for k, v in m.items()
                                      if isinstance(v, (int, float)) and "/" not in k)
             for split, m in metrics.items()]
    lines += beside_paper(experiment, metrics)
    times = [f"wall time {duration(results['wall_seconds'])}"] if results.get(
        "wall_seconds") is not None else []
    if results.get("train_seconds"):
        times.append(f"training {duration(results['train_seconds'])} over "
                     f"{results.get('steps')} steps ({results.get('epochs', 0):.2f} epochs)")
    if times:
        lines.append("; ".join(times))
    lines.append(f"results:  {os.path.join(model_dir, 'results.json')}")
    best = results.get("best") or {}
    lines.append(f"best:     {os.path.join(model_dir, 'best')}"
                 + (f" (step {best['step']})" if best.get("step") is not None else ""))
    pictures = [p for p in results.get("artifacts", []) if p.endswith((".png", ".svg"))]
    curve = os.path.join(model_dir, "learning_curve.png")
    if io.exists(curve):
        pictures.insert(0, curve)
    if pictures:
        lines.append("pictures: " + ", ".join(pictures))
    results_dir = os.path.dirname(os.path.normpath(model_dir)) or "."
    lines.append(f"table:    python evaluate.py --table={experiment.paper} "
                 f"--results_dir={results_dir}")
    return lines


def _metric_text(name: str, value: float) -> str:
    return f"{name}={value}" if isinstance(value, int) else f"{name}={value:.4g}"
