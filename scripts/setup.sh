#!/bin/sh
# Create the virtual environment and install safeadapt with its test tools and built-in data.
set -eu
PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"

# torch first, pinned to the CPU build this kind of machine offers (pip's find-links supplies the
# wheel). Skipped when the venv already has a torch (e.g. a GPU user's own CUDA build).
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  $PIP install --quiet "torch==2.13.0"
fi
$PIP install --quiet -e ".[dev]"
# torchattacks cross-checks our PGD/FGSM in the tests. Its pin requests~=2.25 fights the rest of
# the stack, and it needs nothing beyond torch/numpy here: install it without dependencies.
$PIP install --quiet --no-deps "torchattacks==3.5.1"

# Built-in datasets. Fashion-MNIST is a Debian package; install it when we may (root + apt).
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
      || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) \
      || echo "note: could not install dataset-fashion-mnist; Fashion-MNIST tests will be skipped"
  else
    echo "note: run 'sudo apt-get install dataset-fashion-mnist' for the Fashion-MNIST dataset"
  fi
fi
# Headless Chromium renders report.html in the browser test (skipped, with a message, without it).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -qq chromium >/dev/null 2>&1 \
    || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) \
    || echo "note: could not install chromium; the report browser test will be skipped"
fi
"$VENV/bin/safeadapt" fetch-data
