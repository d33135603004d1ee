# Brindle: the two commands of the Quick start, and a few more.
#   make demo   installs what is missing, builds, runs the lab demo (three nodes, BGP, policy, CNI, Docker)
#   make test   installs what is missing, checks format and lints, builds, runs every test
#               (root: netns + XDP)
#   make bench  runs the benchmarks (criterion + end-to-end against the kernel)
#   make fuzz   runs each coverage-guided fuzz target for FUZZ_SECONDS (default 60) on the
#               stable toolchain and prints executions, coverage and crashes (docs/fuzzing.md)

CARGO ?= cargo
RELEASE := target/release

.PHONY: all deps build demo test bench fuzz clean-lab

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
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml --check
	$(CARGO) test --release --manifest-path fuzz/Cargo.toml --target-dir $(FUZZ_TARGET_DIR)

# The fuzz crate is its own workspace (fuzz/Cargo.toml); `make test` replays its committed
# corpora and crash regressions (seconds), `make fuzz` fuzzes. Both share the workspace's
# target directory, so the replay reuses what the workspace build compiled.
FUZZ_SECONDS ?= 60
FUZZ_TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)

fuzz: deps
	CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh $(FUZZ_TARGETS)

bench: build
	$(CARGO) bench -p fastpath
	$(RELEASE)/brindle-perf e2e --brindle-node $(RELEASE)/brindle-node --testpmd /usr/bin/dpdk-testpmd --sizes 64,512,1500 --out perf/results/e2e.json
	$(RELEASE)/brindle-perf e2e --brindle-node $(RELEASE)/brindle-node --generator xdp --sizes 64,1500 --out perf/results/e2e-xdp.json
	$(RELEASE)/brindle-perf crossnode --brindle-node $(RELEASE)/brindle-node --rounds 5 --out perf/results/crossnode.json
	$(RELEASE)/brindle-perf policy --brindle-bin-dir $(RELEASE) --rules 10,100,1000,10000 --rounds 3 --duration 2 --out perf/results/policy.json --sweep-out perf/results/rules-sweep.json
	$(RELEASE)/brindle-perf scenarios --brindle-bin-dir $(RELEASE) --out perf/results/scenarios.json
	$(RELEASE)/brindle-perf scenarios --brindle-bin-dir $(RELEASE) --wiring brindle-cni-tap --out perf/results/scenarios-tap.json
	$(RELEASE)/brindle-perf scale --brindle-node $(RELEASE)/brindle-node --idle 500 --rounds 2 --out perf/results/scale.json
	$(RELEASE)/brindle-perf scale --brindle-node $(RELEASE)/brindle-node --queues 1,2 --rounds 3 --out perf/results/scale-queues.json
	$(RELEASE)/brindle-perf ipam --clients 4 --rounds 3 --out perf/results/ipam-alloc.json
	$(RELEASE)/brindle-perf bgp-learn --prefixes 1000000 --rounds 2 --out perf/results/bgp-learn.json
	$(RELEASE)/brindle-perf report --results perf/results
