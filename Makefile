# The flash-sale platform. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
PKGS := ./...
SERVICES := deploy/services.sh
# Tests talk to the real services; `services-env` exports their addresses.
WITH_SERVICES = $(SERVICES) up && eval "$$($(SERVICES) env)" &&

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

build: ## build the seckill binary into bin/
	$(GO) build -o bin/seckill ./cmd/seckill

demo: ## run a sale on the embedded stand-ins and print the result (no servers needed)
	$(GO) run ./cmd/seckill demo

bench: ## load-test every scenario and strategy on the real services (started if not up); results in bench/results/ (BENCH_FLAGS="-scenario hot ...")
	$(GO) run ./cmd/seckill bench $(BENCH_FLAGS)

bench-flood: ## the flood scenario (demand 100x the stock) with the waiting room off and on; results in bench/results/flood.* (BENCH_FLAGS="-flood-stock 50 ...")
	$(GO) run ./cmd/seckill bench -scenario flood -baselines=false -name flood $(BENCH_FLAGS)

run: ## run gateway, backend and worker in one process (embedded stand-ins unless addresses are set)
	$(GO) run ./cmd/seckill all

test: ## run every test, unit and against the real MySQL, Redis and RocketMQ (started if not up)
	$(WITH_SERVICES) $(GO) test -race -count=1 -timeout 20m $(PKGS)
	# Allocation and memory figures the race detector would distort (they skip under -race):
	$(GO) test -count=1 -run 'TestGuestCallsAllocateNothing|TestSwapsReleaseMemory|TestChainAllocatesNothing|TestSoldOutAllocations|TestNewContextAllocatesOnce' ./gateway/... ./internal/reqid/

test-faults: ## run the fault suite on the real services (kills and cuts servers during sales)
	$(WITH_SERVICES) $(GO) test -tags faults -run TestFault -count=1 -timeout 15m -v ./app/

test-short: ## run the tests without -race
	$(WITH_SERVICES) $(GO) test -count=1 -timeout 20m $(PKGS)

services-up: ## install and start MariaDB, Redis, Redis Cluster, RocketMQ
	$(SERVICES) up

services-down: ## stop the services
	$(SERVICES) down

fleet-up: ## run the fleet as separate processes behind HAProxy (deploy/fleet.sh; SECKILL_FLEET_GATEWAYS=N ...)
	deploy/fleet.sh start

fleet-down: ## stop the local fleet (the services keep running)
	deploy/fleet.sh stop

fleet-status: ## one line per process of the local fleet
	deploy/fleet.sh status

migrate: ## apply the schema migrations to SECKILL_MYSQL_DSN
	$(GO) run ./cmd/seckill migrate

gen: ## regenerate the kitex code from idl/
	rm -rf idl/kitex_gen
	$(GO) tool kitex -module github.com/seckill/flashsale -gen-path idl/kitex_gen idl/seckill.thrift

docs: ## regenerate docs/CONFIGURATION.md from the settings table (config/settings.go)
	$(GO) run ./config/gen -o docs/CONFIGURATION.md

plugins: ## build the example Wasm plugins and test fixtures
	plugins/build.sh

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go' | grep -v '^idl/kitex_gen/')

lint: ## vet the code
	$(GO) vet $(PKGS)

check: ## fail if formatting, go mod tidy or regenerating would change the tree
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '^idl/kitex_gen/'))" || { gofmt -l $$(git ls-files '*.go' | grep -v '^idl/kitex_gen/'); echo "gofmt would change these files"; exit 1; }
	$(GO) mod tidy
	$(MAKE) gen >/dev/null
	$(MAKE) docs >/dev/null
	$(GO) vet $(PKGS)
	@git diff --exit-code --stat -- go.mod go.sum idl/ docs/CONFIGURATION.md || { echo "go mod tidy, make gen or make docs changed the tree"; exit 1; }
	@test -z "$$(git status --porcelain -- idl/ docs/CONFIGURATION.md)" || { git status --porcelain -- idl/ docs/CONFIGURATION.md; echo "make gen or make docs left new files"; exit 1; }

clean: ## remove build output
	rm -rf bin/

.PHONY: help build demo bench run test test-faults test-short services-up services-down fleet-up fleet-down fleet-status migrate gen docs plugins fmt lint check clean
