"""What ``train.py`` and ``evaluate.py`` share: quiet start-up, and user errors as one line.

TensorFlow prints C++ start-up lines (CUDA probing, oneDNN notices, CPU features) while it is
imported, before its own log level applies. :func:`import_tensorflow` imports it with the
process's standard error sent to a temporary file, and sets ``TF_CPP_MIN_LOG_LEVEL=3`` for what
comes later; with ``show_logs`` (the ``--tf_logs`` flag) nothing is hidden. If the import
fails, the hidden lines are printed.

:func:`main_with_user_errors` wraps a CLI's ``main``: a mistake of the user's (absl's
``UsageError`` for a bad flag, or any :class:`~datasets.errors.UserError`: a model dir that
holds another run, a missing data file, a diverged run) ends the program with
``<program>: error: <message>`` on standard error and exit status 2 (``stopped`` and 1 for a
diverged run; ``stopped`` and 143 or 130 for a run stopped by SIGTERM or Ctrl-C after writing a
checkpoint, :mod:`training.preemption`), not with a traceback; so does Ctrl-C at any other
moment (``stopped: SIGINT``, status 130). :func:`parse_flags` does the same for a flag absl
cannot parse. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import tempfile

from datasets.errors import UserError

__all__ = ["INTERRUPTED", "UserError", "import_tensorflow", "main_with_user_errors",
           "parse_flags"]

#: Exit status after Ctrl-C (128 + SIGINT, as a shell reports it); a run that was training
#: stops the same way after writing a checkpoint (``training.preemption``).
INTERRUPTED = 130


def import_tensorflow(show_logs: bool = False):
    """Imports TensorFlow (and initialises its devices) quietly unless ``show_logs``."""
    if "tensorflow" in sys.modules or show_logs:
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as hidden:
        os.dup2(hidden.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_logical_devices()
        except BaseException:
            os.dup2(saved, 2)
            hidden.seek(0)
            sys.stderr.write(hidden.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tf


def main_with_user_errors(main):
    """``main`` with user errors printed as ``<program>: error: ...`` (see module docstring)."""
    from absl import app

    @functools.wraps(main)
    def wrapped(argv):
        try:
            return main(argv)
        except (UserError, app.UsageError) as e:
            verb, status = getattr(e, "verb", "error"), getattr(e, "exit_status", 2)
            print(f"{os.path.basename(sys.argv[0])}: {verb}: {e}", file=sys.stderr,
                  flush=True)
            return status
        except KeyboardInterrupt:  # Ctrl-C outside a run's training (training.preemption)
            print(f"{os.path.basename(sys.argv[0])}: stopped: SIGINT", file=sys.stderr,
                  flush=True)
            return INTERRUPTED

    return wrapped


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing for ``app.run(main, flags_parser=parse_flags)``: a flag absl cannot
    parse (an unknown flag, a bad value, a ``--flagfile`` that does not exist) ends the program
    with ``<program>: error: <message>`` and exit status 2, like any other user error, rather
    than absl's ``FATAL Flags parsing error`` and status 1."""
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        message = re.sub(r"^ERROR:+\s*", "", " ".join(str(e).split()))
        print(f"{os.path.basename(argv[0])}: error: {message} (--helpfull lists the flags)",
              file=sys.stderr, flush=True)
        sys.exit(2)
