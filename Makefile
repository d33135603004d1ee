# Brindle: the two commands of the Quick start, and a few more.
#   make demo   installs what is missing, builds, runs the single-node lab demo
#   make test   installs what is missing, checks format and lints, builds, runs every test
#               (root: netns + XDP)
#   make bench  runs the benchmarks (criterion + end-to-end against the kernel)

CARGO ?= cargo
RELEASE := target/release

.PHONY: all deps build demo test bench clean-lab

all: build

deps:
	./scripts/deps.sh

build: deps
	$(CARGO) build --release --workspace --bins

demo: build
	./scripts/demo.sh

# One profile (release) for build and tests so nothing is compiled twice. Integration tests
# build their own network namespaces and need root, as CI has.
test: deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	$(CARGO) build --release --workspace --bins
	$(CARGO) test --release --workspace --no-fail-fast

bench: build
	$(CARGO) bench -p fastpath
	$(RELEASE)/brindle-perf e2e --brindle-node $(RELEASE)/brindle-node --sizes 64,512,1500 --out perf/results/e2e.json
	$(RELEASE)/brindle-perf e2e --brindle-node $(RELEASE)/brindle-node --generator xdp --sizes 64,1500 --out perf/results/e2e-xdp.json
	$(RELEASE)/brindle-perf crossnode --brindle-node $(RELEASE)/brindle-node --rounds 5 --out perf/results/crossnode.json
	$(RELEASE)/brindle-perf policy --brindle-bin-dir $(RELEASE) --rules 10,100,1000,10000 --rounds 3 --duration 2 --out perf/results/policy.json --sweep-out perf/results/rules-sweep.json
	$(RELEASE)/brindle-perf scenarios --brindle-bin-dir $(RELEASE) --out perf/results/scenarios.json
	$(RELEASE)/brindle-perf scale --brindle-node $(RELEASE)/brindle-node --idle 500 --rounds 2 --out perf/results/scale.json
	$(RELEASE)/brindle-perf scale --brindle-node $(RELEASE)/brindle-node --queues 1,2 --rounds 3 --out perf/results/scale-queues.json
	$(RELEASE)/brindle-perf ipam --clients 4 --rounds 3 --out perf/results/ipam-alloc.json
	$(RELEASE)/brindle-perf bgp-learn --prefixes 1000000 --rounds 2 --out perf/results/bgp-learn.json
	$(RELEASE)/brindle-perf report --results perf/results
