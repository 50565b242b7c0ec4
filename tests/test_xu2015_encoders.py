"""Show-Attend-Tell encoders: the restricted .pth reader, EfficientNet-Lite0's conversion (against
the PyTorch reference when it is importable, and ImageNet predictions on real Flickr8k photos),
encoder shapes and feature extraction."""

import collections
import hashlib
import importlib.util
import io
import json
import os
import pickle
import re
import shutil
import zipfile

import keras
import keras_hub
import numpy as np
import pytest

from datasets import images
from datasets.errors import DataFormatError
from datasets.flickr8k import read_captions
from weights import efficientnet_lite0 as lite0_module
from papers.xu2015 import encoders
from weights.efficientnet_lite0 import CheckpointError

PACKAGED_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
VGG_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
DOG_CLASSES = range(151, 269)  # ImageNet ids of the dog breeds
# Real Flickr8k photos whose class is unambiguous, with their expected ImageNet top-1.
KNOWN_TOP1 = {"124881487_36e668145d.jpg": "mountain_bike",      # a man on a bicycle, rocky hill
              "107318069_e9f2ef32de.jpg": "balloon",            # air balloons at night
              "109202801_c6381eef15.jpg": "horse_cart",         # draft horses pull a cart
              "1176580356_9810d877bf.jpg": "Airedale"}          # a big dog catches a ball

_missing_reference = [m for m in ("torch", "efficientnet_lite_pytorch")
                      if importlib.util.find_spec(m) is None]
needs_torch = pytest.mark.skipif(
    bool(_missing_reference),
    reason=f"the PyTorch reference is not importable here ({', '.join(_missing_reference)} "
           "missing): install torch and efficientnet-lite-pytorch==0.1.0 in a separate venv")


def flickr_image(data_dir, name):
    return os.path.join(data_dir, "flickr8k", "images", name)


def preprocessed(paths):
    return np.stack([images.load_image(p, 224, "efficientnet_lite").numpy() for p in paths])


@pytest.fixture(scope="module")
def lite0_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("lite0_cache"))


@pytest.fixture(scope="module")
def lite0(lite0_cache):
    lines = []
    model = lite0_module.load_efficientnet_lite0(lite0_cache, log=lines.append)
    assert len(lines) == 1 and lines[0].startswith("converted ")
    return model


# ----------------------------------------------------------------------------- restricted reader
class FloatStorage:
    """Stands for torch.FloatStorage in hand-written checkpoints (renamed in the bytes)."""


class LongStorage:
    """Stands for torch.LongStorage."""


def _rebuild_tensor_v2(*args):
    raise AssertionError("never called: renamed to torch._utils._rebuild_tensor_v2")


class FakeStorage:
    def __init__(self, key, kind, data):
        self.key, self.kind, self.data = key, kind, np.asarray(data)


class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return _rebuild_tensor_v2, self.args


class TorchLikePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", obj.kind, obj.key, "cpu", obj.data.size)
        return None


def torch_pickle(obj):
    """Pickles like torch.save: protocol 2, storages as persistent ids, torch globals."""
    buffer = io.BytesIO()
    TorchLikePickler(buffer, protocol=2).dump(obj)
    data = buffer.getvalue()
    for name, target in (("FloatStorage", b"torch"), ("LongStorage", b"torch"),
                         ("_rebuild_tensor_v2", b"torch._utils")):
        data = data.replace(f"c{__name__}\n{name}\n".encode(),
                            b"c" + target + f"\n{name}\n".encode())
    assert __name__.encode() not in data
    return data


def write_legacy(path, obj, storages):
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001,
                                                     "little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(torch_pickle(obj))
        pickle.dump([s.key for s in storages], f, protocol=2)
        for s in storages:
            f.write(np.int64(s.data.size).tobytes() + s.data.tobytes())


def write_zip(path, obj, storages):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", torch_pickle(obj))
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
        for s in storages:
            archive.writestr(f"archive/data/{s.key}", s.data.tobytes())


def small_checkpoint():
    shared = FakeStorage("0", FloatStorage, np.arange(12, dtype=np.float32))
    count = FakeStorage("1", LongStorage, np.array([7], dtype=np.int64))
    state = collections.OrderedDict([
        ("w", FakeTensor(shared, 0, (3, 4), (4, 1))),
        ("w_t", FakeTensor(shared, 0, (4, 3), (1, 4))),      # a transposed view
        ("tail", FakeTensor(shared, 10, (2,), (1,))),        # an offset into the storage
        ("n", FakeTensor(count, 0, (), ()))])
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    expected = {"w": base, "w_t": base.T, "tail": np.array([10.0, 11.0], np.float32),
                "n": np.array(7, np.int64)}
    return state, [shared, count], expected


@pytest.mark.parametrize("writer", [write_legacy, write_zip])
def test_reader_rebuilds_tensors_of_both_formats(tmp_path, writer):
    state, storages, expected = small_checkpoint()
    path = str(tmp_path / "small.pth")
    writer(path, state, storages)
    got = lite0_module.read_state_dict(path)
    assert list(got) == list(expected)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype and got[name].flags.writeable
        np.testing.assert_array_equal(got[name], value)


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("writer", [write_legacy, write_zip])
def test_reader_refuses_to_run_code(tmp_path, writer):
    marker = tmp_path / "ran"
    path = str(tmp_path / "evil.pth")
    writer(path, collections.OrderedDict([("w", Payload(marker))]), [])
    with pytest.raises(CheckpointError, match=r"evil\.pth: refusing to load (posix|nt)\.system"):
        lite0_module.read_state_dict(path)
    assert not marker.exists()


def test_reader_names_the_file_for_bad_input(tmp_path):
    state, storages, _ = small_checkpoint()
    path = tmp_path / "cut.pth"
    write_legacy(str(path), state, storages)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(CheckpointError, match=r"cut\.pth: storage 1: truncated"):
        lite0_module.read_state_dict(str(path))
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(CheckpointError, match=r"text\.pth: not a readable PyTorch state dict"):
        lite0_module.read_state_dict(str(tmp_path / "text.pth"))
    with pytest.raises(FileNotFoundError, match=r"absent\.pth"):
        lite0_module.read_state_dict(str(tmp_path / "absent.pth"))


def test_reader_reads_the_packaged_state_dict():
    state = lite0_module.read_state_dict(lite0_module.packaged_weights_path())
    counters = [k for k in state if k.endswith(".num_batches_tracked")]
    assert len(state) == 296 and len(counters) == 49
    assert sum(v.size for k, v in state.items() if k not in counters) == 4_694_024
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.weight"].dtype == np.float32
    assert all(state[k].dtype == np.int64 and state[k].shape == () for k in counters)
    variances = np.concatenate([v for k, v in state.items() if k.endswith("running_var")])
    assert variances.min() == 0 and np.mean(variances > 0) > 0.99  # a few dead channels


@needs_torch
def test_reader_matches_torch_load():
    import torch

    path = lite0_module.packaged_weights_path()
    reference = torch.load(path, weights_only=True)
    got = lite0_module.read_state_dict(path)
    assert list(got) == list(reference)
    for name, tensor in reference.items():
        np.testing.assert_array_equal(got[name], tensor.numpy(), err_msg=name)


# ----------------------------------------------------------------------------- conversion
def test_conversion_accounts_for_every_tensor():
    state = lite0_module.read_state_dict(lite0_module.packaged_weights_path())
    classifier = lite0_module.build_classifier(lite0_module.build_backbone())
    with pytest.raises(CheckpointError, match=r"x\.pth: 1 tensors not used .*'extra\.weight'"):
        lite0_module.convert_state_dict({**state, "extra.weight": np.zeros(3)}, classifier,
                                        "x.pth")
    missing = {k: v for k, v in state.items() if k != "_blocks.3._bn1.running_mean"}
    with pytest.raises(CheckpointError, match=r"'_blocks\.3\._bn1\.running_mean' .* missing"):
        lite0_module.convert_state_dict(missing, classifier, "x.pth")
    wrong = {**state, "_conv_head.weight": np.zeros((1280, 320, 3, 3), np.float32)}
    with pytest.raises(CheckpointError, match=r"_conv_head\.weight.* shape \(3, 3, 320, 1280\)"):
        lite0_module.convert_state_dict(wrong, classifier, "x.pth")


def test_padding_is_tensorflow_same():
    backbone = lite0_module.build_backbone()
    assert backbone.get_layer("stem_conv").padding == "same"
    # stride 2 on even sizes: the extra row and column go after (bottom, right)
    assert backbone.get_layer("block2a_dwconv_pad").padding == ((0, 1), (0, 1))   # 3×3 on 112
    assert backbone.get_layer("block3a_dwconv_pad").padding == ((1, 2), (1, 2))   # 5×5 on 56
    assert backbone.get_layer("block2b_dwconv_pad").padding == ((1, 1), (1, 1))   # stride 1
    assert tuple(backbone.output.shape) == (None, 7, 7, 1280)


def test_lite0_predicts_imagenet_classes_of_flickr8k_photos(lite0, data_dir):
    names = list(KNOWN_TOP1)
    logits = lite0.classifier.predict(preprocessed([flickr_image(data_dir, n) for n in names]),
                                      verbose=0)
    for name, top5 in zip(names, lite0_module.top5(logits)):
        assert top5[0][0] == KNOWN_TOP1[name] and top5[0][1] > 0.5, (name, top5)
    captions, _ = read_captions(os.path.join(data_dir, "flickr8k", "text", "Flickr8k.token.txt"))
    folder = os.path.join(data_dir, "flickr8k", "images")
    dogs = [n for n in sorted(os.listdir(folder))
            if all(re.search(r"\bdogs?\b", c.lower()) for c in captions[n])][:32]
    assert len(dogs) == 32
    top1 = lite0.classifier.predict(preprocessed([os.path.join(folder, n) for n in dogs]),
                                    verbose=0).argmax(-1)
    assert np.mean([t in DOG_CLASSES for t in top1]) >= 0.75, [
        keras_hub.utils.imagenet_id_to_name(int(t)) for t in top1]


def test_converted_weights_are_cached_by_sha256(lite0, lite0_cache, monkeypatch, data_dir,
                                                tmp_path):
    assert lite0.weights_sha256 == PACKAGED_SHA256
    cached = lite0_module.cached_weights_path(lite0_cache, PACKAGED_SHA256)
    assert os.listdir(lite0_cache) == [os.path.basename(cached)]

    def no_conversion(path):
        raise AssertionError("converted again despite the cache")

    monkeypatch.setattr(lite0_module, "read_state_dict", no_conversion)
    again = lite0_module.load_efficientnet_lite0(lite0_cache)
    assert not again.classifier.trainable and not again.backbone.trainable
    x = preprocessed([flickr_image(data_dir, "1000268201_693b08cb0e.jpg")])
    np.testing.assert_array_equal(again.classifier.predict(x, verbose=0),
                                  lite0.classifier.predict(x, verbose=0))
    broken = str(tmp_path)
    with open(lite0_module.cached_weights_path(broken, PACKAGED_SHA256), "wb") as f:
        f.write(b"not hdf5")
    with pytest.raises(CheckpointError, match=r"weights\.h5: unreadable cached weights.*delete"):
        lite0_module.load_efficientnet_lite0(broken)


@needs_torch
def test_lite0_matches_the_pytorch_reference(lite0, data_dir):
    names = ["1000268201_693b08cb0e.jpg", "1001773457_577c3a7d70.jpg", *KNOWN_TOP1]
    x = preprocessed([flickr_image(data_dir, n) for n in names])
    features, logits = lite0_module.torch_reference(x)
    keras_features = keras.ops.convert_to_numpy(lite0.backbone(x))
    keras_logits = keras.ops.convert_to_numpy(lite0.classifier(x))
    assert np.abs(keras_logits - logits).max() < 1e-3, np.abs(keras_logits - logits).max()
    assert np.abs(keras_features - features).max() < 1e-3
    np.testing.assert_array_equal(keras_logits.argmax(-1), logits.argmax(-1))


# ----------------------------------------------------------------------------- encoders
@pytest.mark.parametrize("name", ["inception_v3", "inception_v3_keras", "vgg19",
                                  "efficientnet_lite0"])
def test_encoder_gives_row_major_annotation_vectors(name):
    spec = encoders.get_spec(name)
    encoder = encoders.build_encoder(name, weights=None)
    assert encoder.trainable_weights == [] and encoder.non_trainable_weights
    x = np.random.default_rng(0).uniform(-1, 1, [2, spec.image_size, spec.image_size, 3])
    x = x.astype("float32")
    annotations = keras.ops.convert_to_numpy(encoder(x))
    assert annotations.shape == (2, spec.num_locations, spec.feature_dim)
    grid = keras.Model(encoder.input, encoder.get_layer(spec.feature_layer).output)(x)
    grid = keras.ops.convert_to_numpy(grid)
    assert grid.shape == (2, spec.grid, spec.grid, spec.feature_dim)
    np.testing.assert_array_equal(annotations[:, spec.grid + 2], grid[:, 1, 2])   # a_{1·W+2}
    np.testing.assert_array_equal(annotations, grid.reshape(annotations.shape))


def test_encoder_rejects_bad_names_and_weights(tmp_path):
    with pytest.raises(ValueError, match=r"unknown encoder 'resnet'.*'vgg19'"):
        encoders.build_encoder("resnet", None)
    with pytest.raises(FileNotFoundError, match=r"absent\.h5"):
        encoders.build_encoder("vgg19", str(tmp_path / "absent.h5"))
    with pytest.raises(ValueError, match=r"w\.pth: encoder 'vgg19' reads weights from a \.h5"):
        encoders.build_encoder("vgg19", str(tmp_path / "w.pth"))
    with pytest.raises(ValueError, match=r"w\.h5: encoder 'inception_v3' reads weights from a "
                                         r"\.pt"):
        encoders.build_encoder("inception_v3", str(tmp_path / "w.h5"))
    (tmp_path / "garbage.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match=r"garbage\.h5: cannot load vgg19 weights"):
        encoders.build_encoder("vgg19", str(tmp_path / "garbage.h5"))


def test_encoder_key_identifies_weights_by_content(tmp_path):
    key = encoders.encoder_key("efficientnet_lite0", "imagenet")
    assert key == {"encoder": "efficientnet_lite0", "image_size": 224,
                   "preprocess": "efficientnet_lite", "resize": "bilinear, aspect ratio not kept",
                   "feature_layer": "top_activation", "num_locations": 49, "feature_dim": 1280,
                   "version": 2, "weights": "sha256:" + PACKAGED_SHA256, "converter_version": 1}
    copy = shutil.copy(lite0_module.packaged_weights_path(), tmp_path / "lite0.pth")
    assert encoders.encoder_key("efficientnet_lite0", str(copy)) == key
    assert json.loads(json.dumps(key)) == key
    inception = encoders.encoder_key("inception_v3", "imagenet")
    assert (inception["weights"], inception["num_locations"], inception["feature_dim"],
            inception["image_size"], inception["preprocess"]) == (
        "sha256:" + INCEPTION_SHA256, 64, 2048, 299, "inception_2015")
    assert encoders.encoder_key("vgg19", "imagenet")["weights"] == "sha256:" + VGG_SHA256
    assert encoders.encoder_key("vgg19", "keras")["weights"] == "keras:imagenet"
    assert encoders.encoder_key("inception_v3_keras", "imagenet")["weights"] == "keras:imagenet"
    vgg_file = tmp_path / "vgg.h5"
    vgg_file.write_bytes(b"some weights")
    assert encoders.encoder_key("vgg19", str(vgg_file))["weights"] == (
        "sha256:" + hashlib.sha256(b"some weights").hexdigest())
    with pytest.raises(ValueError, match="random weights"):
        encoders.encoder_key("vgg19", None)


def test_extract_features_matches_the_encoder(lite0, lite0_cache, data_dir, tmp_path):
    paths = [flickr_image(data_dir, n) for n in list(KNOWN_TOP1)[:3]]
    lines = []
    features = encoders.extract_features("efficientnet_lite0", "imagenet", paths, batch_size=2,
                                         cache_dir=lite0_cache, log_every=1, log=lines.append)
    assert features.shape == (3, 49, 1280) and features.dtype == np.float32
    expected = keras.ops.convert_to_numpy(lite0.backbone(preprocessed(paths))).reshape(3, 49, 1280)
    np.testing.assert_allclose(features, expected, atol=1e-4)  # batch-size rounding only
    assert [line.split(",")[0] for line in lines] == [
        "efficientnet_lite0 features: 2/3 images", "efficientnet_lite0 features: 3/3 images"]
    half = encoders.extract_features("efficientnet_lite0", "imagenet", paths, batch_size=4,
                                     dtype="float16", cache_dir=lite0_cache, log=lines.append)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, expected, rtol=1e-2, atol=1e-2)
    (tmp_path / "broken.jpg").write_bytes(open(paths[0], "rb").read()[:2000])
    with pytest.raises(DataFormatError, match=r"broken\.jpg"):
        encoders.extract_features("efficientnet_lite0", "imagenet",
                                  [paths[0], str(tmp_path / "broken.jpg")], batch_size=2,
                                  cache_dir=lite0_cache, log=lines.append)
