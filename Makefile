# NOTE-RCNN: every target sets itself up on a fresh clone (venv, protos).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTO_SRC := $(wildcard protos/*.proto)
PROTO_GEN := $(patsubst protos/%.proto,object_detection_note/protos/%_pb2.py,$(PROTO_SRC))

CONFIG ?= configs/synthetic.config
MODEL_DIR ?= runs/synthetic
DATA_DIR ?= data/synthetic
SEED ?= 0
# Seed of the loop's trainings (make iterate); SEED is the data generator's.
TRAIN_SEED ?= 0
PYTEST_ARGS ?=

# The binaries are quiet by themselves (object_detection_note/core/quiet.py);
# TF_CPP_MIN_LOG_LEVEL set in the environment, or --verbosity=1, brings the
# libraries' log lines back.

.PHONY: venv protos test test-slow test-distributed data data-noisy data-paper pretrained iterate bench bench-stall bench-mining ablation ablation-noisy ablation-paper clean

venv: $(STAMP)

# Reinstalls only when the package definition changes.
$(STAMP): setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

protos: $(STAMP) $(PROTO_GEN)

$(PROTO_GEN) &: $(PROTO_SRC) build_protos.py | $(STAMP)
	$(PY) build_protos.py

# Everything CI runs, the two-process multi-worker and Dask-runner tests
# included; tests marked slow are left to `make test-slow`.
test: protos
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

# The minutes-long tests: the XLA-compiled training step at the paper's
# ILSVRC13 shapes (IRv2, 600x1024 padded, 300 proposals): 13 min wall,
# 8.5 GiB peak on the shared 2-core VM; see README "Scale out".
test-slow: protos
	$(PY) -m pytest -q -m slow --durations=0 $(PYTEST_ARGS) tests

# Only the multi-process scale-out tests (multi-worker training, Dask runner).
test-distributed: protos
	$(PY) -m pytest -q $(PYTEST_ARGS) tests/training/test_multi_worker.py \
	  tests/iterate/test_iterate_multi_worker.py tests/mining/test_dask_runner.py

data: protos
	$(PY) pipelines/create_synthetic_tfrecords.py --output_dir=$(DATA_DIR) --seed=$(SEED)

# The noisy-mining benchmark's data: smaller objects, heavier occlusion and
# clutter (synthetic_scenes.NOISY_SCENE_CONFIG); fewer scenes than data/synthetic
# so that its ablation fits in about the same time.
NOISY_DATA_DIR ?= data/synthetic_noisy
data-noisy: protos
	$(PY) pipelines/create_synthetic_tfrecords.py --output_dir=$(NOISY_DATA_DIR) --seed=$(SEED) \
	  --preset=noisy --num_train_images=480 --num_val_images=150

# The Keras ImageNet weights of Inception-ResNet-v2 that the paper configs
# (configs/{ilsvrc13,coco17}_source.config, openimages_v4.config) start from,
# through Keras' download and cache (hash checked); kept if already there.
pretrained: protos
	$(PY) -m object_detection_note.pretrained --model=inception_resnet_v2 --output_dir=pretrained

# The bundled synthetic data is generated on first use; other datasets come
# from the converters in pipelines/ (see README), and iterate names the one to
# run when a config's data is missing.
iterate: protos
	@if [ "$(CONFIG)" = configs/synthetic.config ] && [ ! -f data/synthetic/manifest.json ]; then \
	  $(MAKE) data DATA_DIR=data/synthetic; fi
	$(PY) -m object_detection_note.iterate --pipeline_config_path=$(CONFIG) --model_dir=$(MODEL_DIR) \
	  --seed=$(TRAIN_SEED)

# Step times, mining/eval throughput and peak memory -> bench/results/bench.{json,md}
# (about 25 min on 2 cores; `make bench BENCH_ARGS=--quick` for a smoke run).
bench: protos
	test -e $(DATA_DIR)/manifest.json || $(MAKE) data
	$(PY) bench/run_bench.py $(BENCH_ARGS)

# make data, each converter on its test inputs and a 128-run shard merge, idle
# and beside two busy CPU loops, and the mining stage 5 times in one process
# -> bench/results/stall.{json,md} (about 9 min on the shared 2-core machine;
# STALL_ARGS=--quick for a smaller data part).
bench-stall: protos
	$(PY) bench/stall_bench.py $(STALL_ARGS)

# Mining at the paper's shapes (IRv2, 600x1024, 300 proposals), the project's
# Beam pipeline in float32 and bf16 against the OD API's generate_detection_data
# job in the peer venv (PEER_PYTHON, built by odapi-reference/peer_setup.sh;
# without it only the project's side runs), alternating runs
# -> bench/results/mining_side_by_side.{json,md} (about 20 min on 2 cores).
PEER_PYTHON ?= .peer-venv/bin/python
bench-mining: protos
	$(PY) bench/mining_side_by_side.py $(if $(wildcard $(PEER_PYTHON)),--peer_python=$(PEER_PYTHON)) $(MINING_BENCH_ARGS)

# Paper §4.3 ablation (configs/ablation/*.config: 6 variants, one shared S)
# -> bench/results/ablation.{json,md,png}: mean ± std over SEEDS, ~16 min per
# seed plus 2 min for S on 2 idle cores (~50 min for the default three).
# Resumable; SEEDS=0 for one quick pass; ABLATION_ARGS=--variants=naive,...
SEEDS ?= 0,1,2
ablation: protos
	test -e data/synthetic/manifest.json || $(MAKE) data DATA_DIR=data/synthetic
	$(PY) bench/run_ablation.py --seeds=$(SEEDS) $(ABLATION_ARGS)

# The same six variants on data/synthetic_noisy, where T^0's best box per
# image-level label is wrong 10-20% of the time at θb = 0.2 (the tiny detector
# rarely scores above 0.9 there); 4 epochs per iteration (78 min for three
# seeds on 2 busy cores).
# -> bench/results/ablation_noisy.{json,md,png}; resumable like `ablation`.
NOISY_ABLATION_OVERRIDE ?= note { epochs_per_iteration: 4 mining { score_threshold: 0.2 } }
ablation-noisy: protos
	test -e $(NOISY_DATA_DIR)/manifest.json || $(MAKE) data-noisy
	$(PY) bench/run_ablation.py --seeds=$(SEEDS) --data_dir=$(NOISY_DATA_DIR) \
	  --runs_dir=runs/ablation_noisy --results_name=ablation_noisy \
	  --config_override='$(NOISY_ABLATION_OVERRIDE)' $(ABLATION_ARGS)

# The paper-regime benchmark's data (synthetic_scenes.PAPER_SCENE_CONFIG):
# 2-10 objects of at most 2 categories per scene (3.5 hidden instances per
# image-level label), no decoys; 4 seed images per target category.
PAPER_DATA_DIR ?= data/synthetic_paper
data-paper: protos
	$(PY) pipelines/create_synthetic_tfrecords.py --output_dir=$(PAPER_DATA_DIR) --seed=$(SEED) \
	  --preset=paper --num_train_images=540 --num_val_images=150 --seed_images_per_category=4

# Paper-regime ablation (configs/ablation_paper/*.config: 6 variants, one
# shared S, 6 iterations, θb from bench/results/ablation_paper_calibration.md,
# T^0 300 steps (100 epochs of B0), every T^t at least as many).
# -> bench/results/ablation_paper.{json,md,png}; resumable like `ablation`.
# Controls: ABLATION_ARGS=--control=oracle (or frozen_t0) -> ablation_paper_<control>.*
ablation-paper: protos
	test -e $(PAPER_DATA_DIR)/manifest.json || $(MAKE) data-paper
	$(PY) bench/run_ablation.py --seeds=$(SEEDS) --data_dir=$(PAPER_DATA_DIR) \
	  --configs_dir=configs/ablation_paper --runs_dir=runs/ablation_paper \
	  --results_name=ablation_paper $(ABLATION_ARGS)

clean:
	rm -rf build dist *.egg-info object_detection_note/protos/*_pb2.py
