"""The parts of the loop that need no TensorFlow: settings, schedule and model selection."""

import itertools
import json
import math
import os

import numpy as np
import pytest
from absl import flags

from training import run_dir, settings
from training.schedule import Schedule
from training.selection import Selection, is_better


# ---------------------------------------------------------------------------------- schedule
def _simulate(schedule: Schedule):
    """Drives ``schedule`` as the loop does, over data of ``steps_per_epoch`` batches an epoch;
    returns the calls' sizes, the evaluated steps and the other checkpointed steps."""
    step, epoch, in_epoch, last_eval = 0, 0, 0, -1
    calls, evaluated, saved = [], [], []
    while not schedule.finished(step, epoch):
        while True:
            n = schedule.next_call(step)
            done = min(n, schedule.steps_per_epoch - in_epoch)  # the data ends with the epoch
            calls.append((step, done))
            step, in_epoch = step + done, in_epoch + done
            epoch_done = done < n
            if epoch_done:
                epoch, in_epoch = epoch + 1, 0
            if schedule.evaluates(step, done, epoch_done, epoch) and step != last_eval:
                last_eval = step
                evaluated.append(step)
            elif schedule.checkpoints(step, done, epoch_done):
                saved.append(step)
            if epoch_done or schedule.finished(step, epoch):
                break
    return step, calls, evaluated, saved


@pytest.mark.parametrize("per_epoch, epochs, train_steps, eval_every, checkpoint_every, loop", [
    (p, e, t, v, c, s) for p, e, t, v, c, s in itertools.product(
        (7, 16), (3,), (0, 11, 21), (0, 4, 16), (0, 5), (1, 3, 20))])
def test_the_schedule_evaluates_and_checkpoints_where_the_rules_say(
        per_epoch, epochs, train_steps, eval_every, checkpoint_every, loop):
    schedule = Schedule(steps_per_epoch=per_epoch, epochs=epochs, train_steps=train_steps,
                        eval_every=eval_every, checkpoint_every=checkpoint_every,
                        steps_per_loop=loop)
    total = train_steps or epochs * per_epoch
    end, calls, evaluated, saved = _simulate(schedule)
    assert end == total == schedule.total_steps
    epoch_ends = set(range(per_epoch, total + 1, per_epoch))
    every = set(range(eval_every, total + 1, eval_every)) if eval_every else epoch_ends
    assert evaluated == sorted(every | {total})
    every = set(range(checkpoint_every, total + 1, checkpoint_every) if checkpoint_every
                else ())
    assert every - set(evaluated) <= set(saved) <= every | epoch_ends
    # (an evaluation saves too; a call that finds the epoch's data used up saves the new
    # position, next epoch at step 0, even where the last step was evaluated)
    assert epoch_ends <= set(saved) | set(evaluated)
    assert all(0 <= done <= loop for _, done in calls)
    for start, done in calls:  # no call runs past an evaluation or a checkpoint
        assert not any(start < s < start + done for s in evaluated + saved)


def test_a_resumed_schedule_takes_up_where_it_stopped():
    schedule = Schedule(steps_per_epoch=10, epochs=2, eval_every=4, steps_per_loop=20)
    assert schedule.next_call(0) == 4 and schedule.next_call(6) == 2
    assert schedule.epoch_target(step=6, in_epoch=6) == 10
    steps = Schedule(steps_per_epoch=10, epochs=2, train_steps=13)
    assert steps.epoch_target(step=10, in_epoch=0) == 3 and steps.finished(13, 1)
    assert not Schedule(steps_per_epoch=10, epochs=2).finished(20, 1)


# --------------------------------------------------------------------------------- selection
class _Var:
    def __init__(self, value):
        self.value = np.asarray(value)

    def assign(self, value):
        self.value = np.asarray(value, self.value.dtype)

    def assign_add(self, value):
        self.value = self.value + value

    def numpy(self):
        return self.value


@pytest.mark.parametrize("mode, values, best_steps, stops_at", [
    ("max", [50.0, 60.0, 55.0, 60.0, 59.0], [1, 2], 5),   # an equal value is no better
    ("min", [3.0, 2.0, 2.5, 1.0, 1.5, 1.2], [1, 2, 4], None),
])
def test_selection_keeps_the_best_and_stops_after_patience(mode, values, best_steps, stops_at):
    saved = []
    selection = Selection("loss", mode, patience=3, best_value=_Var(math.nan),
                          evals_since_best=_Var(np.int64(0)), save_best=saved.append)
    stopped = None
    for step, value in enumerate(values, start=1):
        selection.update(step, value)
        if selection.stopped and stopped is None:
            stopped = step
    assert saved == best_steps and stopped == stops_at
    assert selection.best == (max if mode == "max" else min)(values)
    history = [{"step": s, "dev": {"loss": v}} for s, v in enumerate(values, start=1)]
    assert selection.best_entry(history)["step"] == best_steps[-1]
    assert selection.best_entry([]) is None
    assert is_better(1.0, math.nan, "min") and not is_better(1.0, 1.0, "max")


def test_no_patience_never_stops():
    selection = Selection("accuracy", "max", patience=0, best_value=_Var(50.0),
                          evals_since_best=_Var(np.int64(99)), save_best=lambda step: None)
    assert not selection.stopped


# ---------------------------------------------------------------------------------- settings
def test_the_learning_curve_labels_the_best_value_in_the_metric_s_direction(tmp_path):
    from training import curves

    perplexities = [171.4, None, 135.8, 137.4]
    assert curves.best_index(perplexities, "min") == 2
    assert curves.best_index(perplexities, "max") == 0
    history = [{"epoch": i + 1, "train_loss": 5.0 - i, "dev": {"perplexity": v}}
               for i, v in enumerate(perplexities)]
    curves.plot_learning_curve(history, str(tmp_path / "curve.png"), title="lm",
                               metric="perplexity", mode="min")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_every_run_setting_is_one_flag_with_its_declared_default_and_help():
    values = flags.FlagValues()
    settings.define_flags(flag_values=values)
    declared = settings.all_settings()
    assert set(values) == set(declared)
    for name, setting in declared.items():
        assert values[name].default == setting.default, name
        assert values[name].help.endswith(setting.help), name  # enums start with choices
    config_fields = {f for f in settings.RunConfig.__dataclass_fields__} - {"command"}
    assert config_fields == {s.name for s in settings.run_settings()}
    assert {s.name for s in settings.SHORTHANDS} == {"batch_size", "epochs", "train_steps",
                                                      "clip_norm", "patience"}


def test_a_program_may_change_a_default_and_the_help_says_what_train_uses():
    values = flags.FlagValues()
    settings.define_flags(["steps_per_loop", "mixed_precision"],
                          defaults={"steps_per_loop": 1}, flag_values=values)
    assert values["steps_per_loop"].default == 1
    assert values["steps_per_loop"].help.endswith("(train.py's default: 20)")
    values(["prog", "--mixed_precision=mixed_bfloat16"])
    with pytest.raises(flags.IllegalFlagValueError):
        values(["prog", "--mixed_precision=float8"])
    with pytest.raises(ValueError, match="unknown settings \\['step_per_loop'\\]"):
        settings.define_flags(["step_per_loop"], flag_values=flags.FlagValues())


def test_the_identity_holds_exactly_the_settings_declared_part_of_it():
    identity = run_dir.identity("toy/mlp", {}, seed=0, mixed_precision="float32",
                                eval_every=0, static_shapes=False, data={})
    declared = {s.name for s in settings.all_settings().values()
                if s.resume in (settings.IDENTITY, settings.MAY_GROW)}
    # the shorthands are hyperparameters: they are in identity["params"]
    shorthands = {s.name for s in settings.SHORTHANDS}
    assert set(identity) - {"data"} == declared - shorthands
    assert {s.name for s in settings.SHORTHANDS if s.resume == settings.MAY_GROW} == {
        k.split(".")[1] for k in run_dir.EXTENDABLE}


@pytest.mark.parametrize("change, message", [
    ({"model_dir": ""}, "--model_dir is required"),
    ({"eval_every": -1}, "--eval_every must be 0 (every epoch) or a number of steps, got -1"),
    ({"steps_per_loop": 0}, "--steps_per_loop must be at least 1, got 0"),
    ({"checkpoint_every": -2}, "--checkpoint_every must be 0 or a number of steps, got -2"),
    ({"num_cpu_devices": 0}, "--num_cpu_devices must be at least 1, got 0"),
    ({"tpu_timeout": math.inf}, "--tpu_timeout must be a positive number of seconds"),
    ({"mixed_precision": "float8"}, "unknown --mixed_precision='float8'; valid: float32, "),
    ({"strategy": "mirorred"}, "unknown --strategy='mirorred'; valid: default, "),
    ({"strategy": "tpu"}, "--strategy=tpu needs --tpu=ADDRESS"),
])
def test_invalid_settings_are_refused_by_name(change, message):
    config = settings.RunConfig(**{"model_dir": "/tmp/unused", **change})
    with pytest.raises(ValueError, match=message.replace("(", "\\(").replace(")", "\\)")):
        config.validate()
    settings.RunConfig(model_dir="/tmp/unused", strategy="tpu", tpu="local").validate()


@pytest.mark.parametrize("content, why", [
    (b"", "it is empty"),                      # a crash (a full disk) before it was written
    (b"\x00garbage{", "it is not JSON"),
    (b"[1, 2, 3]", "it names no process (no host and pid)"),
    (b'{"host": null, "pid": null}', "it names no process (no host and pid)"),
])
def test_a_lock_that_names_no_process_is_stale_and_taken_over(tmp_path, capsys, content, why):
    (tmp_path / "LOCK").write_bytes(content)
    with run_dir.Lock(str(tmp_path), command="train.py"):
        assert json.loads((tmp_path / "LOCK").read_text())["pid"] == os.getpid()
    assert not (tmp_path / "LOCK").exists()
    assert capsys.readouterr().out == f"removing a stale lock {tmp_path / 'LOCK'} ({why})\n"


def test_a_stale_lock_that_cannot_be_removed_names_the_command_that_removes_it(
        tmp_path, monkeypatch):
    (tmp_path / "LOCK").write_bytes(b"")

    def refuse(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(run_dir.io, "remove", refuse)
    with pytest.raises(run_dir.RunDirError, match=r"stale lock \(it is empty\) .* delete it "
                       rf"with: rm {tmp_path / 'LOCK'}$"):
        run_dir.Lock(str(tmp_path)).acquire()


@pytest.mark.parametrize("case", ["a file", "read-only", "disk full"])
def test_a_start_that_cannot_write_its_lock_is_one_line_and_leaves_nothing(
        tmp_path, monkeypatch, case):
    model_dir = tmp_path / "run"
    if case == "a file":
        model_dir.write_text("not a dir")
    else:
        model_dir.mkdir()
        code, reason = ((30, "Read-only file system") if case == "read-only" else
                        (28, "No space left on device"))
        real_open = open

        def failing(path, mode="r", *args, **kwargs):
            if "w" in mode and str(path).startswith(str(model_dir)):
                raise OSError(code, reason)
            return real_open(path, mode, *args, **kwargs)

        monkeypatch.setattr("builtins.open", failing)
    with pytest.raises(run_dir.RunDirError) as raised:
        run_dir.Lock(str(model_dir)).acquire()
    message = str(raised.value)
    assert message == (f"cannot use {model_dir} as --model_dir: " + (
        "it is a file, not a folder" if case == "a file" else
        f"could not write {model_dir / 'LOCK'} ({reason})"))
    if model_dir.is_dir():
        assert list(model_dir.iterdir()) == []
