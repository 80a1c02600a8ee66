# raftlookupd
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.buildVersion=$(VERSION)
BIN := bin

.PHONY: build test test-short run vet chaos bench image nsq-images images test-deploy compose-config compose-up compose-down clean

build:
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/raftlookupd ./cmd/raftlookupd
	go build -ldflags "$(LDFLAGS)" -o $(BIN)/raftlookupctl ./cmd/raftlookupctl

# The whole suite: unit, differential (against nsqlookupd in-process) and
# end-to-end (real raftlookupd and nsqd processes).
test:
	go vet ./...
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	go test -race -count=1 -p 1 -timeout 20m ./...
	# fsm's tests again with every smallMap in its map form.
	FSM_SMALL_MAX=0 go test -count=1 ./fsm

# Randomized fault schedules (e2e/chaos): a fresh 3-node cluster in network
# namespaces per run, checked for linearizability, bounded staleness and
# session invariants. Needs root. SEED=0 picks a seed (printed); run i uses
# SEED+i, and RUNS=1 SEED=S replays run S's schedule.
RUNS ?= 100
SEED ?= 0
chaos:
	go test -race -count=1 -v -timeout 0 -run 'TestChaos$$' ./e2e/chaos -args -chaos.runs=$(RUNS) -chaos.seed=$(SEED)

# A single-node cluster on local ports with its data in data/n1 (git ignores
# data/): a plain nsqlookupd. The server runs in the foreground, so Ctrl-C
# stops it.
run: build
	$(BIN)/raftlookupd -node-id n1 -broadcast-address 127.0.0.1 -data-dir data/n1

vet:
	go vet ./...

# Figures against nsqlookupd 1.3.0, all measured in this run (about 25
# minutes), into bench/RESULTS.md and the README's performance table.
bench:
	go run ./bench -out bench/RESULTS.md -readme README.md

# Container images (deploy/). Nothing is pulled: static binaries are built on
# the host and copied into FROM scratch images, each from a context directory
# holding only what its Dockerfile copies.
DOCKER ?= docker
IMAGE ?= raftlookupd
# A Docker tag allows [A-Za-z0-9_.-] only.
IMAGE_TAG = $(subst +,_,$(subst /,-,$(VERSION)))
IMAGE_CTX := $(BIN)/image
STATIC_BUILD := CGO_ENABLED=0 go build -trimpath
# nsqd and nsqadmin come from the github.com/nsqio/nsq version go.mod pins.
NSQ_VERSION = $(patsubst v%,%,$(shell go list -m -f '{{.Version}}' github.com/nsqio/nsq))
# `docker compose` when the plugin exists, else docker-compose (v1).
COMPOSE = $(shell $(DOCKER) compose version >/dev/null 2>&1 && echo "$(DOCKER) compose" || echo docker-compose)
# Profiles for compose-up: PROFILES="nsq join".
PROFILES ?=
COMPOSE_ARGS = -f deploy/docker-compose.yml $(foreach p,$(PROFILES),--profile $(p))

# raftlookupd:latest and raftlookupd:$(VERSION).
image:
	rm -rf $(IMAGE_CTX)/raftlookupd
	mkdir -p $(IMAGE_CTX)/raftlookupd/data
	$(STATIC_BUILD) -ldflags "$(LDFLAGS)" -o $(IMAGE_CTX)/raftlookupd/raftlookupd ./cmd/raftlookupd
	$(STATIC_BUILD) -ldflags "$(LDFLAGS)" -o $(IMAGE_CTX)/raftlookupd/raftlookupctl ./cmd/raftlookupctl
	$(DOCKER) build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) \
		-t $(IMAGE):latest -t $(IMAGE):$(IMAGE_TAG) $(IMAGE_CTX)/raftlookupd

# nsqd:$(NSQ_VERSION) and nsqadmin:$(NSQ_VERSION) (the compose file's defaults).
nsq-images:
	rm -rf $(IMAGE_CTX)/nsqd $(IMAGE_CTX)/nsqadmin
	mkdir -p $(IMAGE_CTX)/nsqd/data $(IMAGE_CTX)/nsqadmin
	$(STATIC_BUILD) -o $(IMAGE_CTX)/nsqd/nsqd github.com/nsqio/nsq/apps/nsqd
	$(STATIC_BUILD) -o $(IMAGE_CTX)/nsqadmin/nsqadmin github.com/nsqio/nsq/apps/nsqadmin
	$(DOCKER) build -f deploy/nsqd.Dockerfile --build-arg VERSION=$(NSQ_VERSION) \
		-t nsqd:$(NSQ_VERSION) $(IMAGE_CTX)/nsqd
	$(DOCKER) build -f deploy/nsqadmin.Dockerfile --build-arg VERSION=$(NSQ_VERSION) \
		-t nsqadmin:$(NSQ_VERSION) $(IMAGE_CTX)/nsqadmin

images: image nsq-images

# The compose end-to-end test alone (it builds the images itself).
test-deploy:
	go test -count=1 -v -timeout 15m ./deploy

compose-config:
	$(COMPOSE) $(COMPOSE_ARGS) config

# A three-node cluster on ports 4160/4161, 4260/4261, 4360/4361.
compose-up: images
	$(COMPOSE) $(COMPOSE_ARGS) up -d

# Stops and removes the containers; the named volumes (the registry) stay.
compose-down:
	$(COMPOSE) -f deploy/docker-compose.yml --profile nsq --profile join down --remove-orphans

clean:
	rm -rf $(BIN)
