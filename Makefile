# raftlookupd
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.buildVersion=$(VERSION)
BIN := bin

.PHONY: build test test-short run vet bench image clean

build:
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/raftlookupd ./cmd/raftlookupd
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/raftlookupctl ./cmd/raftlookupctl

# The whole suite: unit, differential (against nsqlookupd in-process) and
# end-to-end (real raftlookupd and nsqd processes).
test:
	go vet ./...
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	go test -race -count=1 -timeout 15m ./...

# A single-node cluster on local ports and ./raftlookupd-data: a plain nsqlookupd.
run: build
	$(BIN)/raftlookupd -node-id n1 -broadcast-address 127.0.0.1 -data-dir raftlookupd-data

vet:
	go vet ./...

clean:
	rm -rf $(BIN)
