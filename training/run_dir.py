"""A model dir holds one run: its identity, its lock, and the checks made on every start.

**Identity.** The resolved values of everything that changes a run's trajectory or what its
numbers mean are written once, into ``config.json``, when the run starts: the experiment, every
hyperparameter (``batch_size`` is the global batch size; ``epochs``, ``train_steps``,
``clip_norm`` and ``patience`` are hyperparameters too), the seed, the precision policy, the
evaluation interval (it decides when the best checkpoint and early stopping are judged), fixed
shapes (they change how examples are batched) and the data (a fingerprint of the train and dev
examples). Every restart compares them; a difference is refused with one line per key, old →
new.

Which settings are part of the identity is declared with each setting, in
:mod:`training.settings` (``tests/test_loop_parts.py`` checks :func:`identity` against it).

**What may change on resume** (not part of the identity, tested): the strategy and number of
replicas at the same global batch size (the batches are the same, see
:mod:`datasets.batching`), ``--tpu``, ``--num_cpu_devices``, ``--steps_per_loop``,
``--checkpoint_every``, ``--verbose``, ``--deterministic``, ``--jit_compile`` (the same
arithmetic, other kernels: like another replica count it can change the last bits), the path of
``--data_dir`` when the data is the same, and ``--cache_dir``. With ``--extend``, ``epochs`` and
``train_steps`` may grow: the run trains on, the identity takes the new length, and
``config.json`` lists the extension; when an extension of a finished run diverges,
``config.json`` takes the finished run's length back (:func:`revert_diverged_extension`), so
that run's own command shows its results again. A learning-rate schedule over the whole run
then takes the new length as its horizon from that point on.

**Lock.** A training process holds ``MODEL_DIR/LOCK`` (host, process id and its start time,
command); a second process refuses with the holder's details. A lock whose process is gone (same
host, pid not running or running another program) is stale and is taken over with a one-line
note, and so is a ``LOCK`` that names no process (empty, not JSON, unreadable: what a crash or a
full disk leaves); one that cannot be removed is refused with the command that removes it. The
lock is written whole before it appears (a hard link to a complete file), so another process
never reads a half-written one, and a start that cannot write it (a full disk, a read-only
dir, ``--model_dir`` naming a file) is refused in one line and leaves nothing behind.
On ``gs://`` the lock is best effort (object stores have no exclusive create). In a multi-worker
job the chief holds it.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import shlex
import socket
from typing import Any

from datasets.errors import MissingDataError, UserError
from training import io

CONFIG = "config.json"
LOCK = "LOCK"
FORMAT = 2
#: Identity keys that ``--extend`` may increase.
EXTENDABLE = ("params.epochs", "params.train_steps")


class RunDirError(UserError, ValueError):
    """A model dir cannot be used for this run; the message says why and what to do."""


def config_path(model_dir: str) -> str:
    return os.path.join(model_dir, CONFIG)


def read_config(model_dir: str) -> dict | None:
    """The run's ``config.json``, or ``None`` if the dir holds no run yet."""
    path = config_path(model_dir)
    if not io.exists(path):
        return None
    config = io.read_json(path)
    if not isinstance(config, dict) or "experiment" not in config:
        raise RunDirError(f"{path} is not a run configuration (no 'experiment')")
    return config


def identity(experiment: str, params: dict, *, seed: int, mixed_precision: str,
             eval_every: int, static_shapes: bool, data: dict) -> dict[str, Any]:
    """The identity of a run (see the module docstring), as it reads back from JSON."""
    return io.to_json({"experiment": experiment, "params": params, "seed": seed,
                       "mixed_precision": mixed_precision, "eval_every": eval_every,
                       "static_shapes": static_shapes, "data": data})


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat = {}
        for key in sorted(value):
            flat.update(_flatten(value[key], f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: value}


def differences(old: dict, new: dict) -> list[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` for every key that differs."""
    a, b = _flatten(old), _flatten(new)
    missing = object()
    return [(k, a.get(k, "(absent)"), b.get(k, "(absent)"))
            for k in sorted(set(a) | set(b)) if a.get(k, missing) != b.get(k, missing)]


def _is_extension(changes: list[tuple[str, Any, Any]]) -> bool:
    def longer(old, new):  # train_steps 0 means "train for epochs": no longer or shorter
        return isinstance(old, int) and isinstance(new, int) and 0 < old < new

    return bool(changes) and all(k in EXTENDABLE and longer(o, n) for k, o, n in changes)


def check(model_dir: str, saved: dict | None, new: dict, *, extend: bool = False) -> str:
    """Compares a restart with the run in ``model_dir``.

    Returns:
        ``"new"`` (no run yet), ``"same"`` (resume) or ``"extend"`` (``extend`` and only the
        run length grows).

    Raises:
        RunDirError: the dir holds another run (the message lists each differing key), or
            ``extend`` and it holds none.
    """
    if saved is None:
        if extend:
            raise RunDirError(f"--extend: {model_dir} holds no run to extend (no config.json); "
                              "drop --extend to start a new run there")
        return "new"
    if "identity" not in saved:
        raise RunDirError(
            f"{model_dir} holds a run of {saved.get('experiment')} written by an earlier "
            f"version of the suite, without a recorded identity; use another --model_dir")
    changes = differences(saved["identity"], new)
    if not changes:
        return "same"
    if extend and _is_extension(changes):
        return "extend"
    lines = [f"  {key}: {old!r} → {value!r}" for key, old, value in changes]
    hint = "use a new --model_dir for a new run"
    if _is_extension(changes):
        hint += ", or pass --extend to train this run for longer"
    raise RunDirError(f"{model_dir} holds another run (config.json); these settings "
                      f"differ:\n" + "\n".join(lines) + f"\n{hint}")


def finished_results(model_dir: str, saved: dict | None, new: dict) -> dict | None:
    """The ``results.json`` of the finished run in ``model_dir`` when ``new`` is its identity
    (its data fingerprints aside: the data is not read again), else ``None``.

    A results file of an earlier length (an extension that has not finished) does not count.
    """
    path = os.path.join(model_dir, "results.json")
    if saved is None or "identity" not in saved or not io.exists(path):
        return None
    same = {**new, "data": saved["identity"].get("data")}
    results = io.read_json(path)
    if (results.get("status") != "ok" or differences(saved["identity"], same)
            or differences(results.get("identity", {}), saved["identity"])):
        return None
    return results


def write_config(model_dir: str, new: dict, *, command: str, saved: dict | None = None,
                 extended: bool = False) -> None:
    """Records a new run, or an extension of the one in ``saved``, in ``config.json``."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    if saved is None:
        config = {"format": FORMAT, "created": now, "command": command, "extensions": []}
    else:
        config = dict(saved)
        if extended:
            config["extensions"] = list(config.get("extensions", [])) + [{
                "time": now, "command": command,
                "changes": [{"key": k, "old": o, "new": n}
                            for k, o, n in differences(saved["identity"], new)]}]
    config.update({"experiment": new["experiment"], "params": new["params"], "identity": new})
    io.atomic_write_json(config_path(model_dir), config)


def revert_diverged_extension(model_dir: str, message: str) -> dict | None:
    """After an extension of a finished run diverged, ``config.json`` takes back the finished
    run's identity (its length), so that its own command finds its results again; the
    extension stays listed, with ``diverged``. Returns the identity taken back (``None``: the
    run was not an extension of a finished run, and nothing changes)."""
    config = read_config(model_dir)
    extensions = list((config or {}).get("extensions") or [])
    results_path = os.path.join(model_dir, "results.json")
    if not extensions or "diverged" in extensions[-1] or not io.exists(results_path):
        return None
    before = json.loads(json.dumps(config["identity"]))
    for change in extensions[-1]["changes"]:  # only EXTENDABLE keys: "params.<name>"
        before["params"][change["key"].split(".", 1)[1]] = change["old"]
    results = io.read_json(results_path)
    if results.get("status") != "ok" or differences(results.get("identity", {}), before):
        return None
    extensions[-1] = {**extensions[-1], "diverged": message}
    io.atomic_write_json(config_path(model_dir), {**config, "identity": before,
                                                  "params": before["params"],
                                                  "extensions": extensions})
    return before


# ----------------------------------------------------------------------------------- lock
_HELD: set[str] = set()


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux ``/proc``), to tell it from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _create_exclusive(path: str, data: bytes) -> bool:
    """Creates ``path`` holding ``data`` unless it exists (``False``), never leaving it empty:
    the data is written beside it and hard-linked into place (a file system without hard links
    gets an exclusive create, then the write)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError:
            os.remove(path)
            raise
        return True
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _alive(holder: dict) -> bool:
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = holder.get("pid_start")
    return started is None or _process_start(pid) in (None, started)


def training_now(model_dir: str) -> str | None:
    """Who trains in ``model_dir`` now (``"process N on HOST since TIME"``), or ``None``: no
    process holds its lock (none, stale, or naming no process). A lock of another host counts
    as held: its process cannot be checked from here."""
    holder, _ = Lock(model_dir)._holder()
    if holder is None or holder.get("host") == socket.gethostname() and not _alive(holder):
        return None
    return f"process {holder['pid']} on {holder['host']} since {holder.get('since')}"


class Lock:
    """``MODEL_DIR/LOCK`` held by one training process (see the module docstring).

    Example:

    ```python
    with Lock(model_dir, command="train.py ..."):
        ...   # train
    ```
    """

    def __init__(self, model_dir: str, command: str = ""):
        self.path = os.path.join(model_dir, LOCK)
        self.command = command
        self.held = False

    def _record(self) -> dict:
        return {"host": socket.gethostname(), "pid": os.getpid(),
                "pid_start": _process_start(os.getpid()), "command": self.command,
                "since": datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds")}

    def _create(self) -> bool:
        """Creates the lock with its record in one step; ``False``: it exists already."""
        data = json.dumps(self._record(), indent=2).encode()
        directory = os.path.dirname(self.path)
        try:
            if io.is_remote(self.path):
                if io.exists(self.path):
                    return False
                io.atomic_write_bytes(self.path, data)
                return True
            io.makedirs(directory)
            return _create_exclusive(self.path, data)
        except OSError as e:  # a regular file named like the dir, read-only, disk full, ...
            if os.path.isfile(directory):
                raise RunDirError(f"cannot use {directory} as --model_dir: it is a file, not "
                                  "a folder") from None
            raise RunDirError(f"cannot use {directory} as --model_dir: could not write "
                              f"{self.path} ({e.strerror or e})") from None

    def _holder(self) -> tuple[dict | None, str]:
        """The lock's record, or ``None`` and why it is not a record a process wrote."""
        try:
            holder = io.read_json(self.path)
        except MissingDataError:
            return None, "gone"
        except ValueError:
            empty = io.is_remote(self.path) or os.path.getsize(self.path) == 0
            return None, "it is empty" if empty else "it is not JSON"
        except OSError as e:
            return None, f"it cannot be read: {e.strerror or e}"
        if not (isinstance(holder, dict) and isinstance(holder.get("pid"), int)
                and isinstance(holder.get("host"), str)):
            return None, "it names no process (no host and pid)"
        return holder, ""

    def _remove_stale(self, why: str) -> None:
        print(f"removing a stale lock {self.path} ({why})", flush=True)
        try:
            io.remove(self.path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise RunDirError(f"{self.path} is a stale lock ({why}) that this process cannot "
                              f"remove ({e.strerror or e}); delete it with: "
                              f"rm {shlex.quote(self.path)}") from None

    def acquire(self) -> "Lock":
        """Takes the lock; a stale one (its process gone, or a file that names no process:
        empty, not JSON, unreadable) is removed with a one-line note and taken over."""
        if self.path in _HELD:
            raise RunDirError(f"{os.path.dirname(self.path)} is already in use by this process")
        for _ in range(3):
            if self._create():
                self.held = True
                _HELD.add(self.path)
                return self
            holder, why = self._holder()
            if holder is None:
                if why != "gone":
                    self._remove_stale(why)
                continue
            same_host = holder.get("host") == socket.gethostname()
            if same_host and not _alive(holder) or (
                    same_host and holder.get("pid") == os.getpid()):
                self._remove_stale(f"pid {holder.get('pid')} on {holder.get('host')} is not "
                                   "running")
                continue
            raise RunDirError(
                f"{os.path.dirname(self.path)} is in use: process {holder.get('pid')} on "
                f"{holder.get('host')} has trained in it since {holder.get('since')} "
                f"({self.path}). Wait for it to finish or use another --model_dir; if no such "
                f"process runs any more, delete it: rm {shlex.quote(self.path)}")
        raise RunDirError(f"could not take the lock {self.path}")

    def release(self) -> None:
        if self.held:
            self.held = False
            _HELD.discard(self.path)
            try:
                io.remove(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "Lock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
