"""The run settings, each declared once: name, default, help, check, and whether it may change
when a run resumes.

Three kinds of setting:

- **How a run is executed**: the fields of :class:`RunConfig` (``--model_dir``,
  ``--strategy``, ``--eval_every``, ...). Each field is declared with :func:`_setting`, which
  records its help and what a resumed run may do with it (:data:`IDENTITY`: part of the run's
  identity, :mod:`training.run_dir`, so a change is refused; :data:`MAY_CHANGE`: a restart may
  use another value).
- **Hyperparameter shorthands** (:data:`SHORTHANDS`): ``--batch_size``, ``--epochs``,
  ``--train_steps``, ``--clip_norm`` and ``--patience`` set the hyperparameter of the same name
  (:data:`training.params.LOOP_PARAMS`); their default is the experiment's value.
- **What to run** (:data:`CHOICE`): ``--experiment``, ``--params`` and ``--tf_logs``.

``train.py``'s flags and ``bench/``'s are generated from these declarations
(:func:`define_flags`), so a default or a help text lives in one place. No TensorFlow is imported
here: ``train.py --list`` reads it without.

Example:

```python
from absl import flags
settings.define_flags(["experiment", "seed", "steps_per_loop"], defaults={"steps_per_loop": 1})
config = settings.RunConfig(model_dir="/tmp/run", seed=flags.FLAGS.seed)
config.validate()
```
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from typing import Any, Callable, Iterable, Mapping

from training.params import LOOP_PARAMS

#: Part of the run's identity (``config.json``): a restart with another value is refused.
IDENTITY = "identity"
#: A restart may use another value (the numbers do not depend on it).
MAY_CHANGE = "may change"
#: Part of the identity, but ``--extend`` may increase it.
MAY_GROW = "may grow with --extend"
#: Says where a run is, or how this one process behaves: not a property of the run.
PER_PROCESS = "per process"

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "keras_papers")


def default_cache_dir() -> str:
    """``$KERAS_PAPERS_CACHE_DIR``, else ``~/.cache/keras_papers``."""
    return os.environ.get("KERAS_PAPERS_CACHE_DIR") or DEFAULT_CACHE_DIR


Check = tuple[Callable[[Any], bool], str]


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting of a run.

    Args:
        name: the flag's name (``--name``) and the field's.
        kind: ``str``, ``int``, ``float`` or ``bool``.
        default: the default value (``None`` for the shorthands: the experiment's).
        help: one line for ``--help``.
        resume: :data:`IDENTITY`, :data:`MAY_GROW`, :data:`MAY_CHANGE` or :data:`PER_PROCESS`.
        choices: the valid values of a string setting (an enum flag).
        check: ``(test, what a valid value is)``; see :meth:`problem`.
    """

    name: str
    kind: type
    default: Any
    help: str
    resume: str
    choices: tuple[str, ...] | None = None
    check: Check | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not valid (a message naming the flag), or ``None``."""
        if self.choices is not None and value not in self.choices:
            return f"unknown --{self.name}={value!r}; valid: {', '.join(self.choices)}"
        if self.check is not None and value is not None and not self.check[0](value):
            return f"--{self.name} must be {self.check[1]}, got {value}"
        return None


def _setting(default: Any, help: str, *, resume: str, choices: tuple[str, ...] | None = None,
             check: Check | None = None):
    """A :class:`RunConfig` field that is also a flag (see :func:`run_settings`)."""
    return dataclasses.field(default=default, metadata={
        "help": help, "resume": resume, "choices": choices, "check": check})


_AT_LEAST_ONE: Check = (lambda v: v >= 1, "at least 1")


@dataclasses.dataclass
class RunConfig:
    """How a run is executed (every field but ``command`` is a ``train.py`` flag).

    The run's length, batch size, clipping and patience are hyperparameters
    (:mod:`training.params`), set on the command line by :data:`SHORTHANDS`. ``cache_dir``
    ``None`` means :func:`default_cache_dir`; ``command`` is the command line, recorded in
    ``config.json``.
    """

    model_dir: str | None = _setting(None, "Where checkpoints, summaries and results go (local or "
                              "gs://).", resume=PER_PROCESS)
    data_dir: str | None = _setting(None, "The raw datasets (default: $KERAS_PAPERS_DATA_DIR, "
                                    "else the online source).", resume=MAY_CHANGE)
    cache_dir: str | None = _setting(None, "Work shared by runs, e.g. image features "
                                     "(default: $KERAS_PAPERS_CACHE_DIR, else "
                                     "~/.cache/keras_papers).", resume=MAY_CHANGE)
    strategy: str = _setting("default", "tf.distribute strategy.", resume=MAY_CHANGE,
                             choices=STRATEGIES)
    tpu: str | None = _setting(None, "TPU name or grpc address, or 'local' (TPU VM / Colab).",
                               resume=MAY_CHANGE)
    tpu_timeout: float = _setting(120.0, "Seconds to wait for the TPU to answer.",
                                  resume=MAY_CHANGE,
                                  check=(lambda v: math.isfinite(v) and v > 0,
                                         "a positive number of seconds"))
    num_cpu_devices: int = _setting(1, "With --strategy=mirrored and no GPU: split the CPU "
                                    "into this many logical devices (replicas).",
                                    resume=MAY_CHANGE, check=_AT_LEAST_ONE)
    eval_every: int = _setting(0, "Evaluate on dev every N steps (0: every epoch).",
                               resume=IDENTITY,
                               check=(lambda v: v >= 0, "0 (every epoch) or a number of steps"))
    steps_per_loop: int = _setting(20, "Training steps per tf.function call.",
                                   resume=MAY_CHANGE, check=_AT_LEAST_ONE)
    checkpoint_every: int = _setting(0, "Also checkpoint every N steps (0: at evaluations).",
                                     resume=MAY_CHANGE,
                                     check=(lambda v: v >= 0, "0 or a number of steps"))
    keep_checkpoints: int = _setting(2, "Latest checkpoints kept for resuming (model, "
                                     "optimiser, data position); 1 halves their space but "
                                     "leaves no older one to fall back on if the newest is "
                                     "cut short; 0 keeps one while training and removes it "
                                     "when the run finishes (it can then not be extended). "
                                     "best/ (the model only) is kept apart.",
                                     resume=MAY_CHANGE,
                                     check=(lambda v: v >= 0, "0 or more"))
    seed: int = _setting(0, "Random seed (weights, dropout, data order).", resume=IDENTITY)
    deterministic: bool = _setting(True, "Enable TensorFlow op determinism.", resume=MAY_CHANGE)
    mixed_precision: str = _setting("float32", "Keras dtype policy.", resume=IDENTITY,
                                    choices=PRECISIONS)
    jit_compile: bool = _setting(False, "Compile the train step with XLA.", resume=MAY_CHANGE)
    static_shapes: bool = _setting(False, "Fixed-shape batches (implied on TPU).",
                                   resume=IDENTITY)
    verbose: bool = _setting(True, "Show a progress line and per-evaluation results.",
                             resume=MAY_CHANGE)
    extend: bool = _setting(False, "Train an existing run for longer: --epochs or "
                            "--train_steps may grow; every other setting must stay the same.",
                            resume=PER_PROCESS)
    reevaluate: bool = _setting(False, "Run the final evaluation of a finished run again and "
                                "rewrite its results.json (without it, re-running a finished "
                                "run prints its results and exits).", resume=PER_PROCESS)
    command: str = ""

    def validate(self) -> None:
        """Raises ``ValueError`` naming the flag of the first invalid setting."""
        if not self.model_dir:
            raise ValueError("--model_dir is required")
        for setting in run_settings():
            problem = setting.problem(getattr(self, setting.name))
            if problem:
                raise ValueError(problem)
        if self.strategy == "tpu" and not self.tpu:
            raise ValueError("--strategy=tpu needs --tpu=ADDRESS (or --tpu=local on a TPU "
                             "VM/Colab)")


_KINDS = {"str": str, "int": int, "float": float, "bool": bool}


def run_settings() -> tuple[Setting, ...]:
    """The :class:`RunConfig` fields that are settings, in declaration order."""
    hints = typing.get_type_hints(RunConfig)
    declared = []
    for field in dataclasses.fields(RunConfig):
        if "help" not in field.metadata:
            continue
        kind = next(t for t in typing.get_args(hints[field.name]) or (hints[field.name],)
                    if t is not type(None))
        declared.append(Setting(field.name, kind, field.default, field.metadata["help"],
                                field.metadata["resume"], field.metadata["choices"],
                                field.metadata["check"]))
    return tuple(declared)


_SHORTHAND_HELP = {
    "batch_size": "Global batch size",
    "epochs": "Epochs",
    "train_steps": "Total training steps, instead of epochs",
    "clip_norm": "Clip the global-batch gradient to this global norm; 0: off",
    "patience": "Early stopping: evaluations without a better dev metric; 0: off",
}
#: Flags that set the hyperparameter of the same name (default: the experiment's value).
SHORTHANDS: tuple[Setting, ...] = tuple(
    Setting(name, float if name == "clip_norm" else int, None,
            f"{_SHORTHAND_HELP[name]} (the {name} hyperparameter).",
            MAY_GROW if name in ("epochs", "train_steps") else IDENTITY)
    for name in LOOP_PARAMS)

#: What to run, and how this process reports it.
CHOICE: tuple[Setting, ...] = (
    Setting("experiment", str, None, "The experiment to train, 'paper/row' (see --list).",
            IDENTITY),
    Setting("params", str, None, "Hyperparameter overrides, 'key=value,key2=value2'.",
            IDENTITY),
    Setting("tf_logs", bool, False, "Show TensorFlow's C++ start-up and runtime log lines.",
            PER_PROCESS),
)


def all_settings() -> dict[str, Setting]:
    """Every setting by name."""
    return {s.name: s for s in (*CHOICE, *run_settings(), *SHORTHANDS)}


def define_flags(names: Iterable[str] | None = None, *,
                 defaults: Mapping[str, Any] | None = None, flag_values=None) -> None:
    """Defines an absl flag for each named setting (default: every one).

    ``defaults`` replaces a setting's default for this program (a benchmark's fixed shapes);
    the help then says what ``train.py`` uses.
    """
    from absl import flags

    declared = all_settings()
    defaults = dict(defaults or {})
    unknown = sorted(set(names or ()) - set(declared)) + sorted(set(defaults) - set(declared))
    if unknown:
        raise ValueError(f"unknown settings {unknown}; settings: {', '.join(declared)}")
    kwargs = {"flag_values": flag_values} if flag_values is not None else {}
    for name in names or declared:
        setting = declared[name]
        default, help_text = setting.default, setting.help
        if name in defaults and defaults[name] != setting.default:
            default = defaults[name]
            if setting.default is not None:
                help_text += f" (train.py's default: {setting.default})"
        if setting.choices is not None:
            flags.DEFINE_enum(name, default, list(setting.choices), help_text, **kwargs)
            continue
        define = {str: flags.DEFINE_string, int: flags.DEFINE_integer,
                  float: flags.DEFINE_float, bool: flags.DEFINE_bool}[setting.kind]
        define(name, default, help_text, **kwargs)


def run_config_from_flags(flag_values, **fields: Any) -> RunConfig:
    """A :class:`RunConfig` from the parsed flags of its settings, with ``fields`` replacing
    some (the model dir and seed of one of several runs, the command line)."""
    values = {s.name: flag_values[s.name].value for s in run_settings()}
    return RunConfig(**{**values, **fields})
