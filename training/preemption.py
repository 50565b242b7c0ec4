"""Stopping a run cleanly on SIGTERM or Ctrl-C: a checkpoint at the current step, then exit.

Colab, preemptible VMs, Kubernetes and TPU pods stop a process with SIGTERM and a grace period;
a person stops it with Ctrl-C (SIGINT). While a run trains, :class:`Preemption` turns either
signal into a request: the training call in progress finishes (a call of up to
``steps_per_loop`` steps cannot be cut inside a ``tf.function``; an evaluation that is running
finishes too, so the restart evaluates where an uninterrupted run does), the loop writes a
checkpoint at the current step and raises :class:`Preempted`. The model dir's ``LOCK`` is
released on the way out, and ``train.py`` prints one line naming the checkpoint and the command
that resumes, and exits with :data:`EXIT_STATUS` (128 + the signal's number, as a shell
reports a process the signal ended: 143 for SIGTERM, 130 for SIGINT). The restart resumes from
that checkpoint and ends with the weights of a run never interrupted (``tests/test_loop.py``).

Outside the training phase (setting up, the final evaluation) the signal stops the run at once
with the same line: nothing is lost there that a restart does not redo. A second signal while
the checkpoint is being written stops the process at once, as without this handler.

In a multi-worker job the workers agree after every call, with one all-reduce of a flag, on
whether any of them was signalled, so all of them write the (collective) checkpoint at the same
step. TensorFlow's ``tf.distribute.experimental.PreemptionCheckpointHandler`` does the same for
``MultiWorkerMirroredStrategy`` and TPUs; it is not used because it adds a variable of its own
to the checkpoint (runs started earlier could not resume: their checkpoints lack it), restores
the newest checkpoint without the loop's fallback to an older one when the newest is cut short,
counts one step per call where the loop takes several, and ends the process itself.

Example:

```python
with Preemption() as stop:
    ...                    # a call of the training function
    if stop.requested:
        save_checkpoint()
        raise stop.error(step, checkpoint_path)
```
"""

from __future__ import annotations

import signal
import threading

from datasets.errors import UserError

SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: Exit status after a clean stop, by signal: 128 + its number, as a shell reports it.
EXIT_STATUS = {signal.SIGTERM: 128 + signal.SIGTERM, signal.SIGINT: 128 + signal.SIGINT}


class Preempted(UserError, RuntimeError):
    """A run stopped by SIGTERM or SIGINT after writing a checkpoint; rerunning resumes it."""

    verb = "stopped"

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_status = EXIT_STATUS[signum]


class Preemption:
    """While entered, SIGTERM and SIGINT are requests to stop (see the module docstring).

    ``deferred`` says whether the loop will act on a request at its next opportunity (while it
    trains); otherwise the handler raises :class:`Preempted` at once. Outside the main thread
    (signals are delivered only there) it installs nothing.
    """

    def __init__(self):
        self.signum: int | None = None
        self.deferred = False
        #: ``() -> (step, newest checkpoint)`` of the run, once it is set up
        self.position = lambda: (None, None)
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def error(self, step: int | None, checkpoint: str | None) -> Preempted:
        """The exception that stops the run, naming ``checkpoint`` and how to resume. In a
        multi-worker job a worker that was not signalled itself stops because another one was
        (with SIGTERM's status: the job was preempted)."""
        if self.requested:
            name, signum = signal.Signals(self.signum).name, self.signum
        else:
            name, signum = "another worker of the job was stopped", signal.SIGTERM
        at = f" at step {step}" if step is not None else ""
        if checkpoint:
            where = f"the same command resumes the run from {checkpoint}"
        else:
            where = "no checkpoint was written; the same command starts the run again"
        return Preempted(f"{name}{at}: {where}", signum)

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second signal: stop now, as the default action would
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        self.signum = signum
        if not self.deferred:
            raise self.error(*self.position())

    def __enter__(self) -> "Preemption":
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
