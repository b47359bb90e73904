# l2g — see README.md. `make demo` runs the main job, `make test` the tests.
# Both install what is missing (scripts/setup.sh) and build first.

SHELL := /bin/bash
export GOTOOLCHAIN := local
GO ?= go
BIN := bin/l2g
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

# Another libtorch (pip torch's torch/ directory or pytorch.org's libtorch):
#   make build LIBTORCH=/path/to/libtorch [TORCH_CXX11_ABI=0]
ifdef LIBTORCH
TAGS := l2g_libtorch
TORCH_CXX11_ABI ?= 1
CUDA_LINK := $(if $(wildcard $(LIBTORCH)/lib/libtorch_cuda.so),-Wl$(comma)--no-as-needed -ltorch_cuda -Wl$(comma)--as-needed)
export CGO_CXXFLAGS := -O2 -D_GLIBCXX_USE_CXX11_ABI=$(TORCH_CXX11_ABI) -I$(LIBTORCH)/include -I$(LIBTORCH)/include/torch/csrc/api/include
export CGO_LDFLAGS := -L$(LIBTORCH)/lib -Wl,-rpath,$(LIBTORCH)/lib $(CUDA_LINK) -ltorch -ltorch_cpu -lc10
endif
comma := ,
GOFLAGS_TAGS := $(if $(TAGS),-tags $(TAGS))

.PHONY: all setup build build-sharedlib demo demo-pretrain test vet fmt-check bench clean

all: build

setup:
	@scripts/setup.sh

build: setup
	$(GO) build $(GOFLAGS_TAGS) -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/l2g

# An l2g binary that links build/libl2gtorch.so instead of compiling the
# shim; on a GPU host rebuild only the library there (scripts/build-shim.sh).
build-sharedlib: setup
	scripts/build-shim.sh "$(LIBTORCH)" build
	CGO_LDFLAGS="-L$(CURDIR)/build" $(GO) build -tags l2g_sharedlib \
	  -ldflags "$(LDFLAGS) -extldflags '-Wl,-rpath,\$$ORIGIN -Wl,-rpath,\$$ORIGIN/../build'" -o bin/l2g-sharedlib ./cmd/l2g

# The main job: the synthetic dataset (once), then the whole pipeline on the
# embedded Temporal server with a local worker, the comparison table and the
# path of the HTML report. History stays in runs/.temporal.
DEMO_DATA := runs/demo-data
demo: build
	@test -f $(DEMO_DATA)/synth.json || $(BIN) dataset synth --out $(DEMO_DATA) --classes 5 --train 400 --val 100 --size 96x96 --seed 0
	$(BIN) run --config configs/pipeline/demo.yaml --data $(DEMO_DATA) --runs runs --state-dir runs/.temporal --local

# Rebuilds weights/demo-pretrain.safetensors, the demo's stand-in for
# ImageNet pre-training (about 20 CPU minutes; see configs/demo-pretrain.yaml).
demo-pretrain: build
	$(BIN) dataset synth --out runs/pretrain-data --train 4000 --val 0 --seed 7777
	$(BIN) train --config configs/demo-pretrain.yaml --data runs/pretrain-data --out runs/demo-pretrain
	cp runs/demo-pretrain/global.safetensors weights/demo-pretrain.safetensors

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(GOFLAGS_TAGS) ./...
	$(GO) vet -tags "$(strip $(TAGS) integration)" ./test/integration/...

test: 
	@scripts/setup.sh --test
	$(MAKE) --no-print-directory fmt-check
	$(MAKE) --no-print-directory vet
	scripts/check-shim-headers.sh
	$(GO) test $(GOFLAGS_TAGS) -count=1 ./...
	L2G_BUILD_TAGS="$(TAGS)" $(GO) test -tags "$(strip $(TAGS) integration)" -count=1 -timeout 30m ./test/integration/...

bench:
	@scripts/setup.sh --bench
	$(GO) build $(GOFLAGS_TAGS) -o $(BIN) ./cmd/l2g
	$(BIN) bench step --threads $$(nproc)
	$(GO) test $(GOFLAGS_TAGS) -run '^$$' -bench . -benchtime 3x ./internal/...

clean:
	rm -rf bin build
