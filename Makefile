# iDetex upload validation service. `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GEN := service/api/gen
PROTO := proto/idetex/v1/validation.proto

.DEFAULT_GOAL := help

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP) ## create .venv and install the service

$(GEN)/idetex/v1/validation_pb2.py: $(PROTO) $(STAMP)
	mkdir -p $(GEN)
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=$(GEN) --pyi_out=$(GEN) --grpc_python_out=$(GEN) $(PROTO)
	touch $(GEN)/__init__.py $(GEN)/idetex/__init__.py $(GEN)/idetex/v1/__init__.py

proto: $(GEN)/idetex/v1/validation_pb2.py ## generate protobuf stubs

.PHONY: help venv proto
