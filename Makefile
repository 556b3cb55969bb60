# redback: build, test, bench, lint.
GO ?= go
BIN ?= bin/redback

.PHONY: build test test-deps test-matrix lint lint-units bench bench-quick bench-scale fuzz clean

# The version, commit and commit time that `redback version` and
# redback_build_info report, stamped with -ldflags -X (go build's own VCS
# stamping is off under -buildvcs=false, and needs .git in the build).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
REVISION_TIME ?= $(shell TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd 2>/dev/null)
VERSION_PKG = github.com/redback-dev/redback/agent/version
LDFLAGS ?= -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) -X $(VERSION_PKG).Time=$(REVISION_TIME)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/redback

# The whole suite, as CI runs it: installs what the tests need when missing
# (redis-server and friends), checks formatting, runs every test with -race.
# (go test runs the main go vet checks itself; `make lint` runs all of them.)
test: test-deps
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) test -race -count=1 -timeout 30m ./...

test-deps:
	./scripts/install-test-deps.sh

# The fidelity suite on the whole server matrix (redis 7.0 to valkey 9),
# then the randomized dump/restore round trip on every server of the matrix
# at once, for RANDOM_SECONDS on each (a soak; `make test` runs it for 20 s
# on redis 7.0 only). A failure names the REDBACK_SEED and
# REDBACK_RANDOM_SERVERS that replay its round:
#   REDBACK_SEED=N REDBACK_RANDOM_SERVERS=valkey-9 go test -run Randomized ./agent/engine/
RANDOM_SECONDS ?= 300
test-matrix: test-deps
	REDBACK_RANDOM_MATRIX=1 REDBACK_RANDOM_SECONDS=$(RANDOM_SECONDS) $(GO) test -race -count=1 -v -parallel 6 -timeout 90m \
		-run 'Fidelity|Fill|Diff|Randomized' ./internal/fidelity/ ./agent/engine/

# gofmt, every go vet check, go.mod tidy, the layering rules of
# internal/layers (which package may import which), and the systemd units.
lint: lint-units
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(GO) test -count=1 ./internal/layers

# systemd-analyze verify on copies of configs/*.service whose ExecStart is a
# freshly built redback (verify wants the binary to exist); any warning
# (an unknown key, a bad value) fails. Skipped where systemd-analyze is absent.
# The Go test TestDeploymentFiles (cmd/redback) checks what the units say.
lint-units:
	@if ! command -v systemd-analyze >/dev/null; then echo "lint-units: no systemd-analyze, skipped"; exit 0; fi; \
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(GO) build -o "$$tmp/redback" ./cmd/redback && \
	for u in configs/*.service; do sed "s#/usr/local/bin/redback#$$tmp/redback#g" "$$u" > "$$tmp/$$(basename $$u)"; done && \
	out=$$(cd "$$tmp" && systemd-analyze verify --man=no ./*.service 2>&1); rc=$$?; \
	if [ $$rc -ne 0 ] || [ -n "$$out" ]; then echo "systemd-analyze verify:"; echo "$$out"; exit 1; fi; \
	echo "systemd-analyze verify: $$(ls configs/*.service | tr '\n' ' ')ok"

# The benchmark of docs/PERFORMANCE.md: 1M mixed keys, backup and restore
# against redis-cli --rdb and redis-cli --pipe. Needs about 3 GB of RAM.
bench: test-deps
	$(GO) run ./bench --profile 1m

bench-quick: test-deps
	$(GO) run ./bench --profile 100k

# The scale run: 10 million keys (about 5.5 GB in Redis, 6 GB of RESP in
# the temporary folder), each method once. Needs about 14 GB of RAM.
bench-scale: test-deps
	$(GO) run ./bench --profile 10m --reps 1

# Each fuzz target for FUZZTIME (CI: `make fuzz FUZZTIME=20s`).
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzReader -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./codec
	$(GO) test -run '^$$' -fuzz FuzzReader -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./agent/engine/rdbfile
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./agent/engine/rdbvalue

clean:
	rm -rf bin
