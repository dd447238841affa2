# rasoat — see README.md. Needs only Go; every other tool is installed
# here, pinned, with `go install` into ./.tools.

GO        ?= go
TOOLS     := $(CURDIR)/.tools
BUF_VERSION               := v1.75.0
PROTOC_GEN_GO_VERSION     := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0
export PATH := $(TOOLS):$(PATH)

.PHONY: run run-province test vet bench bench-peer fuzz proto proto-check breaking lint android tools build

## run: start rasoatd on 127.0.0.1:7443 (embedded SQLite in this directory, no setup)
run:
	$(GO) run ./server/cmd/rasoatd

## run-province: rasoatd on 127.0.0.1:7443 over a throw-away PostgreSQL
## cluster in .tools/pg (initdb + pg_ctl from Debian's postgresql package,
## on a free loopback port; stopped when rasoatd stops)
PGDIR := $(TOOLS)/pg
run-province:
	@url=$$(scripts/pgcluster.sh start $(PGDIR)) && \
	  trap 'scripts/pgcluster.sh stop $(PGDIR)' EXIT && \
	  echo "province store: $$url (bootstrap: go run ./server/cmd/rasoatd bootstrap --db '$$url')" && \
	  $(GO) run ./server/cmd/rasoatd --db "$$url"

## test: vet, gofmt and the race-enabled test suite
test: vet
	$(GO) test -race ./...

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

build:
	$(GO) build ./...

## bench: the figures quoted in README.md
bench:
	$(GO) test -run '^$$' -bench 'Assess$$|AssessExplained' -benchtime 2s -cpu 1 ./survey/
	$(GO) test -run '^$$' -bench 'AssessStream' -benchtime 3s ./server/scoring/
	$(GO) test -run '^$$' -bench PushIngest -benchtime 30x ./server/store/sqlite/
	$(GO) test -run '^$$' -bench 'PushConcurrent|PushSlowDisk' -benchtime 3x ./server/store/sqlite/
	$(GO) test -run '^$$' -bench PushLoad -benchtime 1x ./internal/systemtest/
	$(GO) test -run '^$$' -bench Materialise ./internal/entity/
	$(GO) test -run '^$$' -bench 'Pull|Snapshot' -benchtime 3x ./server/syncsvc/
	$(GO) test -run '^$$' -bench 'InitialSync|IncrementalSync' -benchtime 5x -count 4 ./client/
	$(GO) test -run '^$$' -bench CommuneFirstSync -benchtime 5x -count 3 ./internal/systemtest/
	$(GO) test -run '^$$' -bench ProvinceIngest -benchtime 1x ./internal/hatest/   # PostgreSQL parts with RASOAT_TEST_POSTGRES
	$(GO) test -run '^$$' -bench 'BenchmarkApply$$' -benchmem ./internal/merge/

## bench-peer: rasoat against PouchDB 9 (express-pouchdb) on the same commune,
## in one run, and the ratio (needs Node.js and npm; internal/peerbench/README.md)
PEER := internal/peerbench
bench-peer:
	@if [ ! -d $(PEER)/node_modules ] || [ $(PEER)/package-lock.json -nt $(PEER)/node_modules/.package-lock.json ]; then \
	  npm ci --prefix $(PEER) --no-audit --no-fund; fi
	$(GO) test -run '^TestPeer$$' -count=1 -v -timeout 30m ./$(PEER)/ -peerbench $(PEERFLAGS)

## fuzz: a short fuzzing run of the household decoder and engine (a count of
## executions, not a duration, which races the fuzzing coordinator under load)
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzAssessJSON -fuzztime 300000x ./survey/

## android: the client library must build for the tablet, pure Go
android:
	GOOS=android GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./client/...

$(TOOLS)/buf:
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc

## proto: lint the contract and regenerate the Go beside it
proto: tools
	buf lint
	buf generate

lint: tools
	buf lint

## breaking: the contract stays wire- and source-compatible with main
## (run on a branch before it lands; main is what tablets in the field speak)
breaking: tools
	buf breaking --against '.git#branch=main'

## proto-check: the committed generated code is what `make proto` writes
proto-check: proto
	@git diff --exit-code -- proto || { echo "generated code is stale: run make proto and commit"; exit 1; }
