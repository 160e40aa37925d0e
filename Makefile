# The README's two commands: `make run` and `make test`.
GO ?= go
BIN := bin/flock

.PHONY: run build test bench fuzz deps vet

deps:
	@bash .ci/install-deps

build:
	$(GO) build -o $(BIN) ./cmd/flock

# Start Flock on this machine with the demo app deployed.
run: deps build
	./$(BIN) up --demo

# The whole suite, with the real HAProxy, git, npm and child processes.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

# Speed figures (docs/benchmarks.md records them).
bench: deps
	$(GO) test -run '^$$' -bench . -timeout 40m ./...

# A short fuzzing pass over every parser of outside input.
fuzz:
	$(GO) test ./deploy -run '^$$' -fuzz FuzzParseDescriptor -fuzztime 30s
	$(GO) test ./deploy -run '^$$' -fuzz FuzzParseProcfile -fuzztime 30s
	$(GO) test ./builder -run '^$$' -fuzz FuzzUnpack -fuzztime 30s
	$(GO) test ./router/hap -run '^$$' -fuzz FuzzParseStats -fuzztime 30s
	$(GO) test ./webhook -run '^$$' -fuzz FuzzGitHubHandler -fuzztime 30s
	$(GO) test ./deploy/marathon -run '^$$' -fuzz FuzzParseEvent -fuzztime 30s
	$(GO) test ./deploy/marathon -run '^$$' -fuzz FuzzReadSSE -fuzztime 30s
	$(GO) test ./deploy/marathon -run '^$$' -fuzz FuzzDecodeApps -fuzztime 30s
	$(GO) test ./deploy/marathon -run '^$$' -fuzz FuzzAppName -fuzztime 30s
	$(GO) test ./router -run '^$$' -fuzz FuzzRender -fuzztime 30s
	$(GO) test ./web -run '^$$' -fuzz FuzzScaleBody -fuzztime 30s
	$(GO) test ./web -run '^$$' -fuzz FuzzConfigPatch -fuzztime 30s
	$(GO) test ./deploy -run '^$$' -fuzz FuzzApplyConfig -fuzztime 30s
	$(GO) test ./router -run '^$$' -fuzz FuzzPEMPayload -fuzztime 30s
	$(GO) test ./router/acme -run '^$$' -fuzz FuzzChallengeHandler -fuzztime 30s
