"""The experiment registry: one entry per paper table row.

An experiment is named ``paper/row`` (for example ``baselines/sst2_bow_logreg`` or
``cho2014/sst2_gru``). Each paper package defines its rows in ``papers/<paper>/experiments.py``
with :func:`register`; :func:`load_all` imports every such module, so ``train.py --list`` and
``evaluate.py --table`` see all of them. Those modules import no TensorFlow: an experiment names
its task as ``"module:Class"``, imported when a run needs it.

Hyperparameters are the one source of truth for a run's settings: every experiment has
``batch_size`` (global), ``epochs``, ``train_steps`` (0: run ``epochs``), ``clip_norm`` (0: off)
and ``patience`` (0: no early stopping) besides its own, and nothing it does not use.
``train.py``'s ``--batch_size``, ``--epochs``, ``--train_steps``, ``--clip_norm`` and
``--patience`` are shorthands for ``--params``. Every value is checked
(:func:`training.params.check_params`).

Example:

```python
from papers import registry
exp = registry.get("baselines/sst2_bow_logreg")
params = exp.params_with_overrides("learning_rate=0.1,l2=1e-4")
task = exp.make_task(params, data_dir="/data", model_dir="/tmp/run")
```
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any, Mapping, Sequence

from training.params import LOOP_MEANINGS, LOOP_PARAMS, check_params


@dataclasses.dataclass(frozen=True)
class Reported:
    """A number a paper (or a course) reports for one table row.

    Args:
        value: the number as printed, in percent where the paper uses percent.
        split: "train", "dev" or "test": which split the paper measured on.
        source: where it is printed, e.g. "Tai et al. 2015, Table 2".
        metric: the metric name, defaults to the experiment's metric.
        note: what differs from our setting (model size, data, embeddings).
    """

    value: float
    split: str
    source: str
    metric: str | None = None
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """What one hyperparameter means (``train.py --describe``).

    Args:
        meaning: one line: what it sets, in the paper's terms where the paper names it.
        paper: the paper's value where the paper gives one (a value, or a short text such as
            ``"{16, 32} (Appendix A.3)"``); ``None``: the paper gives none.
    """

    meaning: str
    paper: Any = None


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One registered experiment (a table row).

    Args:
        name: ``paper/row``.
        task: a :class:`training.task.Task` subclass, or ``"module:Class"`` naming one
            (imported on first use); called as ``task(params, data_dir, model_dir)``.
        dataset: the dataset name passed to ``datasets.load``.
        metric: the main dev metric: ``--search`` ranks runs by it and tables show it. It
            must be the task's own :attr:`~training.task.Task.metric`, which picks the best
            checkpoint and drives early stopping (:meth:`make_task` checks; the registry is
            read without TensorFlow, so the name is written here too).
        hparams: default hyperparameters; ``--params`` overrides them by name, with their types.
        reported: the paper's numbers for this row.
        description: one line for ``--list``.
        grid: the paper's hyperparameter grid (name → values) for ``train.py --search``;
            ``None``: the paper gives none.
        table_metrics: metrics besides ``metric`` (and the reported ones) that
            ``evaluate.py --table`` shows.
        hyperparameters: what each hyperparameter means and the paper's value
            (:class:`Hyperparameter`; the loop's are described in
            :data:`training.params.LOOP_MEANINGS`): ``train.py --describe`` prints them.
        paper_values: this row's own paper values, where they differ by row (Table 1's ``k``),
            over those of ``hyperparameters``.
    """

    name: str
    task: Any
    dataset: str
    metric: str
    hparams: Mapping[str, Any]
    reported: tuple[Reported, ...] = ()
    description: str = ""
    grid: Mapping[str, Sequence] | None = None
    table_metrics: tuple[str, ...] = ()
    hyperparameters: Mapping[str, Hyperparameter] = dataclasses.field(default_factory=dict)
    paper_values: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def paper(self) -> str:
        return self.name.split("/", 1)[0]

    def undescribed(self) -> list[str]:
        """The hyperparameters without a meaning (none, for every registered row: tested)."""
        return [k for k in self.hparams
                if k not in self.hyperparameters and k not in LOOP_MEANINGS]

    def describe(self) -> str:
        """Every hyperparameter with its default, the paper's value and what it means."""
        rows = []
        for key in sorted(self.hparams):
            doc = self.hyperparameters.get(key) or Hyperparameter(LOOP_MEANINGS.get(key, "?"))
            paper = self.paper_values.get(key, doc.paper)
            rows.append((key, _shown(self.hparams[key]), "-" if paper is None else
                         _shown(paper), doc.meaning))
        widths = [max(len(r[i]) for r in rows + [("hyperparameter", "default", "paper")])
                  for i in range(3)]
        lines = [f"{self.name}: {self.description}",
                 f"dataset {self.dataset}; selects on dev {self.metric}"]
        lines += [f"paper: {r.value:g} {r.metric or self.metric} on {r.split} ({r.source})"
                  for r in self.reported]
        if self.grid:
            lines.append("grid (--search): " + "; ".join(
                f"{k} {', '.join(_shown(v) for v in values)}" for k, values in self.grid.items()))
        lines.append("")
        for row in [("hyperparameter", "default", "paper", "meaning")] + rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[3])
        lines.append("")
        lines.append(f"Change any with --params=key=value,... (the loop's also with "
                     f"--{', --'.join(LOOP_PARAMS)}).")
        return "\n".join(lines)

    def task_class(self) -> type:
        if not isinstance(self.task, str):
            return self.task
        module, _, name = self.task.partition(":")
        return getattr(importlib.import_module(module), name)

    def make_task(self, params: dict, data_dir: str | None, model_dir: str):
        """The experiment's task.

        Raises:
            ValueError: the task selects checkpoints by another metric than :attr:`metric`.
        """
        task_class = self.task_class()
        if task_class.metric != self.metric:
            raise ValueError(f"{self.name}: the experiment's metric is {self.metric!r} but "
                             f"{task_class.__name__} selects checkpoints by "
                             f"{task_class.metric!r}; make them the same")
        return task_class(params, data_dir, model_dir)

    def params_with_overrides(self, overrides: str | Mapping[str, Any] | None) -> dict:
        """Returns the hyperparameters with ``overrides`` applied and checked.

        ``overrides`` is ``"k=v,k2=v2"`` or a mapping. Values are cast to the type of the
        default (bool accepts true/false/1/0; tuples are written ``a:b:c``). An unknown name, a
        value that does not parse or a value out of range raises ``ValueError`` (naming the
        valid keys for an unknown name).
        """
        params = dict(self.hparams)
        for key, value in parse_overrides(overrides, self.name, params).items():
            params[key] = _cast_like(params[key], value, key, self.name)
        check_params(params, self.name)
        return params


def _shown(value: Any) -> str:
    """A value as ``--params`` takes it (tuples ``a:b``, booleans ``true``/``false``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ":".join(str(v) for v in value) or "()"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_overrides(overrides: str | Mapping[str, Any] | None, name: str,
                    valid: Mapping[str, Any]) -> dict[str, Any]:
    """``"k=v,k2=v2"`` (or a mapping) as a dict; unknown keys raise ``ValueError``."""
    if not overrides:
        return {}
    if isinstance(overrides, str):
        items = []
        for part in overrides.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise ValueError(f"bad --params entry {part!r} for {name}: expected key=value; "
                                 f"valid keys: {', '.join(sorted(valid))}")
            key, value = part.split("=", 1)
            items.append((key.strip(), value.strip()))
        if not items:
            raise ValueError(f"--params={overrides!r} sets no hyperparameter: expected "
                             f"key=value[,key=value...]; valid keys: {', '.join(sorted(valid))}")
    else:
        items = list(overrides.items())
    result = {}
    for key, value in items:
        if key not in valid:
            raise ValueError(f"unknown hyperparameter {key!r} for {name}; "
                             f"valid keys: {', '.join(sorted(valid))}")
        if key in result:
            raise ValueError(f"hyperparameter {key!r} of {name} is set twice")
        result[key] = value
    return result


def _cast_like(default: Any, value: Any, key: str, name: str) -> Any:
    def fail():
        return ValueError(f"hyperparameter {key}={value!r} of {name} does not parse as "
                          f"{type(default).__name__} (default {default!r})")

    if isinstance(default, tuple) and isinstance(value, (list, tuple)):
        return tuple(value)  # a tuple read back from JSON
    if not isinstance(value, str):
        if isinstance(default, bool) != isinstance(value, bool):
            raise fail()
        if isinstance(default, float) and isinstance(value, int):
            return float(value)
        if default is not None and not isinstance(value, type(default)):
            raise fail()
        return value
    try:
        if isinstance(default, bool):
            low = value.lower()
            if low in ("true", "1", "yes"):
                return True
            if low in ("false", "0", "no"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            kind = type(default[0]) if default else str
            return tuple(kind(v) for v in value.split(":") if v)
        if default is None:
            return value
        return type(default)(value)
    except ValueError:
        raise fail() from None


_REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    if experiment.name in _REGISTRY:
        raise ValueError(f"experiment {experiment.name!r} is registered twice")
    if experiment.name.count("/") != 1:
        raise ValueError(f"experiment name {experiment.name!r} must be 'paper/row'")
    missing = [k for k in LOOP_PARAMS if k not in experiment.hparams]
    if missing:
        raise ValueError(f"experiment {experiment.name!r} lacks the loop hyperparameters "
                         f"{missing}")
    unknown = [k for k in (experiment.grid or {}) if k not in experiment.hparams]
    if unknown:
        raise ValueError(f"experiment {experiment.name!r}: grid keys {unknown} are not "
                         "hyperparameters")
    check_params(experiment.hparams, experiment.name)
    _REGISTRY[experiment.name] = experiment
    return experiment


def load_all() -> dict[str, Experiment]:
    """Imports ``papers.<paper>.experiments`` for every paper package."""
    import papers

    for info in pkgutil.iter_modules(papers.__path__):
        if info.ispkg:
            try:
                importlib.import_module(f"papers.{info.name}.experiments")
            except ModuleNotFoundError as e:
                if e.name != f"papers.{info.name}.experiments":
                    raise
    return dict(_REGISTRY)


def get(name: str) -> Experiment:
    experiments = load_all()
    if name not in experiments:
        raise ValueError(
            f"unknown experiment {name!r}; registered experiments:\n  "
            + "\n  ".join(sorted(experiments)))
    return experiments[name]


def by_paper(paper: str) -> list[Experiment]:
    experiments = load_all()
    rows = [e for e in experiments.values() if e.paper == paper]
    if not rows:
        papers_known = sorted({e.paper for e in experiments.values()})
        raise ValueError(f"unknown paper {paper!r}; papers: {', '.join(papers_known)}")
    return sorted(rows, key=lambda e: e.name)
