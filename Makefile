# rwkv-gpu — every target has a comment; `make help` lists them.
GO      ?= go
BIN     ?= bin/rwkv
PKGS    ?= ./...
FUZZTIME ?= 60s

.PHONY: help build test test-gpu test-short lint fuzz bench device-pack clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build the rwkv binary into bin/rwkv
	$(GO) build -o $(BIN) ./cmd/rwkv

test: ## run every test (GPU tests use Mesa's lavapipe when no GPU is present)
	$(GO) vet $(PKGS)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) test -count=1 -timeout 30m $(PKGS)

test-gpu: ## run the tests and fail (not skip) when no WebGPU adapter exists
	RWKV_REQUIRE_GPU=1 $(GO) test -count=1 -timeout 30m $(PKGS)

test-short: ## quick tests only (skips the slow whole-model checks)
	$(GO) test -short -count=1 $(PKGS)

lint: ## gofmt and go vet
	gofmt -l . ; $(GO) vet $(PKGS)

fuzz: ## run every fuzz target in the repo (scripts/fuzz.sh) for FUZZTIME each (default 60s)
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

bench: build ## the main job: rwkv bench on the built-in synthetic 0.1B model
	./$(BIN) bench

DEVICE_TYPES ?= F16 Q8_0 Q4_K_M Q6_K Q5_K_M Q2_K
device-pack: build ## bin/rwkv and .devcheck/ (fixtures, prompt) for scripts/device-check.sh on a GPU machine
	rm -rf .devcheck && mkdir -p .devcheck
	for t in $(DEVICE_TYPES); do \
	  cp ../shared/fixtures/tiny/rwkv7-tiny-$$t.gguf .devcheck/ && \
	  cp ../shared/fixtures/tiny/logits/rwkv7-tiny-$$t.ideal.f32 .devcheck/; done
	echo $(DEVICE_TYPES) > .devcheck/types.txt
	python3 -c "import json;print(','.join(map(str,json.load(open('../shared/fixtures/tiny/greedy.json'))['prompt_ids'])))" > .devcheck/prompt_ids.txt
	du -sh bin .devcheck

clean: ## remove build outputs
	rm -rf bin .devcheck
