"""A trained run as a TensorFlow SavedModel that serves raw input.

:func:`export_run` writes the best checkpoint of a run with one serving signature,
``serving_default``, whose inputs are what a user has: strings for the text classifiers (the
tokeniser and vocabulary run inside the graph), a pair of strings for entailment and
paraphrase, encoded JPEG bytes for captioning (the frozen CNN, the decoder and the beam search
inside). Each task builds its own signature (:meth:`training.task.Task.serving_endpoint`);
this module packs it with ``keras.export.ExportArchive`` and writes it atomically (into a
temporary folder renamed into place).

The SavedModel needs TensorFlow and, for the text tasks, ``tensorflow_text`` (its tokenizer ops):

```python
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops)
served = tf.saved_model.load("export/sst2")
served.signatures["serving_default"](text=tf.constant(["a gripping, funny film"]))
# {"label": ..., "label_id": ..., "probabilities": ...}
```

TensorFlow Serving serves the folder as it is (as version ``1`` of a model), e.g. with REST:
``POST /v1/models/sst2:predict`` and ``{"inputs": {"text": ["a gripping, funny film"]}}``.
"""

from __future__ import annotations

import os
import shutil
import uuid

import keras

from training import io


def classification_outputs(probabilities, label_names) -> dict:
    """``{"label", "label_id", "probabilities"}`` of a batch of class probabilities."""
    import tensorflow as tf

    best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return {"label": tf.gather(tf.constant(list(label_names)), best), "label_id": best,
            "probabilities": tf.cast(probabilities, tf.float32)}


def classification_records(outputs: dict, label_names) -> list[dict]:
    """The outputs of :func:`classification_outputs` as one dict per input (what
    ``evaluate.py --predict`` prints): ``label``, ``label_id`` and ``probabilities`` by name."""
    return [{"label": label_names[int(i)], "label_id": int(i),
             "probabilities": {name: float(p) for name, p in zip(label_names, row)}}
            for i, row in zip(outputs["label_id"].numpy(), outputs["probabilities"].numpy())]


def export_run(task, model: keras.Model, directory: str) -> str:
    """Writes ``model`` with ``task``'s serving signature to ``directory``; returns it.

    Raises:
        training.task.PredictionNotSupported: the task has no raw-input signature.
        FileExistsError: ``directory`` exists and is not empty.
    """
    fn, signature, resources = task.serving_endpoint(model)
    if io.exists(directory) and (not io.isdir(directory) or os.listdir(directory)):
        raise FileExistsError(f"{directory} exists: export into a new folder")
    archive = keras.export.ExportArchive()
    # The endpoint tracks the variables it reads by itself. ``archive.track(model)`` would add
    # the Keras wrappers of the same variables, and the SavedModel would store every weight
    # twice (keras-team/keras#23553: 2x on disk and in every server's memory).
    for resource in resources:
        archive.track(resource)
    # Named "serving_default", the endpoint is the SavedModel's one signature (another name
    # would add "serving_default" as a second name for it).
    archive.add_endpoint("serving_default", fn, input_signature=signature)
    if io.is_remote(directory):  # object stores have no rename of folders
        archive.write_out(directory, verbose=False)
        return directory
    temporary = f"{directory.rstrip('/')}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        archive.write_out(temporary, verbose=False)
        if io.exists(directory):
            os.rmdir(directory)
        os.replace(temporary, directory)
    finally:
        if os.path.exists(temporary):
            shutil.rmtree(temporary)
    return directory
