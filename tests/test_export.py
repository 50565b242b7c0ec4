"""SavedModel export: every kind of task, trained briefly, loaded in a fresh process that does
not import the suite, predicts what ``evaluate.py --predict`` does."""

import json
import subprocess
import sys

import numpy as np
import pytest

from papers import registry
from training import export, loop

#: (experiment, overrides, inputs for prediction)
KINDS = {
    "sst_gru": ("cho2014/sst2_gru", "train_steps=20,hidden=16,embedding_dim=16",
                ["a gripping , funny film", "dull and far too long"]),
    "sst_bow": ("baselines/sst2_bow_logreg", "train_steps=20", ["a gripping , funny film"]),
    "bert_sentence": ("devlin2019/sst2", "dataset=sst2,train_examples=64,eval_examples=32,"
                      "train_steps=2,max_seq_length=32,batch_size=16",
                      ["a gorgeous, witty movie.", "boilerplate clichés"]),
    "bert_pair": ("devlin2019/mrpc", "train_examples=64,eval_examples=32,train_steps=2,"
                  "max_seq_length=32,batch_size=16",
                  ["He said yes.\tHe agreed.", "The cat sat.\tStocks fell sharply."]),
    "entailment": ("rocktaschel2016/attention", "train_examples=500,train_steps=10,k=16",
                   ["A man plays a guitar .\tA man makes music .",
                    "Two dogs run .\tThe cats sleep ."]),
}

LOADER = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the tokenizer ops)
cases = json.loads(sys.argv[1])
out = {}
for name, (path, inputs) in cases.items():
    serve = tf.saved_model.load(path).signatures["serving_default"]
    # "image" holds JPEG files: the signature takes their bytes
    kwargs = {k: tf.stack([tf.io.read_file(f) for f in v]) if k == "image" else tf.constant(v)
              for k, v in inputs.items()}
    result = serve(**kwargs)
    out[name] = {k: (v.numpy().astype(str).tolist() if v.dtype == tf.string
                     else v.numpy().tolist()) for k, v in result.items()}
assert not any(m.startswith(("papers", "training", "layers", "datasets")) for m in sys.modules)
print(json.dumps(out))
"""


def _serving_inputs(name, inputs):
    if name in ("bert_pair",):
        a, b = zip(*(i.split("\t") for i in inputs))
        return {"text_a": list(a), "text_b": list(b)}
    if name == "entailment":
        a, b = zip(*(i.split("\t") for i in inputs))
        return {"premise": list(a), "hypothesis": list(b)}
    return {"text": inputs}


@pytest.mark.slow
def test_exports_predict_what_the_suite_predicts(data_dir, cache_dir, tmp_path):
    cases, expected = {}, {}
    for name, (experiment, overrides, inputs) in KINDS.items():
        exp = registry.get(experiment)
        config = loop.RunConfig(model_dir=str(tmp_path / name), data_dir=data_dir,
                                cache_dir=cache_dir, verbose=False)
        result = loop.train(exp, exp.params_with_overrides(overrides), config)
        path = export.export_run(result.task, result.model, str(tmp_path / "export" / name))
        assert _stored_values(path) == _weight_values(result.model), name  # each weight once
        cases[name] = (path, _serving_inputs(name, inputs))
        expected[name] = result.task.predict(result.model, inputs, str(tmp_path / "pictures"))
    image_run = _caption_run(data_dir, cache_dir, tmp_path)
    image = image_run.task.split("test").columns["image_path"][0]
    path = export.export_run(image_run.task, image_run.model, str(tmp_path / "export" / "xu"))
    assert _stored_values(path) == (_weight_values(image_run.model)
                                    + _weight_values(image_run.task.encoder))
    cases["caption"] = (path, {"image": [image]})
    expected_caption = image_run.task.predict(image_run.model, [image], str(tmp_path))[0]

    out = subprocess.run([sys.executable, "-c", LOADER, json.dumps(cases)],
                         capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    served = json.loads(out.stdout.strip().splitlines()[-1])
    for name, records in expected.items():
        assert served[name]["label"] == [r["label"] for r in records], name
        probabilities = [[r["probabilities"][k] for k in r["probabilities"]] for r in records]
        np.testing.assert_allclose(served[name]["probabilities"], probabilities, atol=1e-5)
    assert served["entailment"]["attention"]
    assert served["caption"]["caption"] == [expected_caption["caption"]]


def _stored_values(path):
    """The number of values in an export's checkpoint (keras-team/keras#23553 stores each
    weight twice through ``ExportArchive.track(model)``)."""
    import tensorflow as tf
    shapes = tf.train.load_checkpoint(f"{path}/variables/variables").get_variable_to_shape_map()
    return sum(int(np.prod(s)) for k, s in shapes.items() if k != "_CHECKPOINTABLE_OBJECT_GRAPH")


def _weight_values(model):
    return sum(int(np.prod(w.shape)) for w in model.weights)


def _caption_run(data_dir, cache_dir, tmp_path):
    exp = registry.get("xu2015/flickr8k_soft")
    params = exp.params_with_overrides("encoder=efficientnet_lite0,train_steps=5,units=32,"
                                       "embedding_dim=16,attention_units=16,beam_width=2")
    config = loop.RunConfig(model_dir=str(tmp_path / "xu"), data_dir=data_dir,
                            cache_dir=cache_dir, verbose=False)
    return loop.train(exp, params, config)


def test_a_task_without_a_raw_input_signature_says_so(tmp_path):
    exp = registry.get("cho2014/reverse_seq2seq")
    task = exp.make_task(exp.params_with_overrides("train_examples=64,dev_examples=16,"
                                                   "test_examples=16,hidden_units=8"),
                         None, str(tmp_path))
    with pytest.raises(Exception, match="cannot be exported for serving on raw input"):
        export.export_run(task, task.build_model(), str(tmp_path / "export"))


def test_a_task_without_prediction_says_so_as_a_user_error(tmp_path, capsys):
    from training import cli, task as task_module

    exp = registry.get("cho2014/reverse_seq2seq")
    task = exp.make_task(exp.params_with_overrides("train_examples=64,dev_examples=16,"
                                                   "test_examples=16,hidden_units=8"),
                         None, str(tmp_path))
    model = task.build_model()
    with pytest.raises(task_module.PredictionNotSupported, match="does not support prediction"):
        task.predict(model, ["1 2 3"], str(tmp_path))
    # on the command line: one line on standard error and exit status 2, no traceback
    status = cli.main_with_user_errors(lambda argv: task.predict(model, argv, str(tmp_path)))(
        ["1 2 3"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and ": error: " in err
    assert "does not support prediction" in err and "Traceback" not in err
