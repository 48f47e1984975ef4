# menotime-ops. A newcomer needs two targets: `make demo` and `make test`.
# Both install the Python tools they need (moto's server, boto3, cfn-lint) into
# .venv themselves; a fresh machine needs only the Rust toolchain and python3.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < requirements-dev.txt | cut -d' ' -f1)
SAM_VENV := $(VENV)/sam
SAM_STAMP := $(SAM_VENV)/.installed-$(shell cksum < requirements-sam.txt | cut -d' ' -f1)

.PHONY: test demo venv lint fmt bench build-lambda sam-build clean

## test: the workspace's tests (unit, property, aws-smithy-mocks, end to end and fault suite against moto, call budgets), cfn-lint, rule routing, template security (IAM, checkov)
test: venv
	cargo test --workspace --locked
	$(VENV)/bin/cfn-lint template.yaml
	$(PY) scripts/check_event_patterns.py
	$(PY) scripts/check_template_security.py
	$(PY) scripts/check_template_security.py --self-test
	$(VENV)/bin/checkov -f template.yaml --framework cloudformation --skip-download --quiet --compact

## demo: the three functions' stories end to end on a local moto server (no AWS account)
demo: venv
	cargo run --quiet --locked -p menotime-e2e --bin demo

## venv: the Python tools, installed once into .venv (again when requirements-dev.txt changes)
venv: $(STAMP)

$(STAMP): requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@test -x $(PY) || python3 -m venv $(VENV) || { python3 -m pip install --user --quiet virtualenv && python3 -m virtualenv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

## lint: formatting and clippy, as CI runs them
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:
	cargo fmt --all

## bench: bootstrap sizes (x86_64, arm64), cold start, first and warm invocation, peak memory and AWS calls of the three functions; a table and target/bench/results.json (see README, Performance)
bench: venv build-lambda
	cargo run --quiet --locked -p menotime-e2e --bin bench
	cargo test --quiet --locked -p menotime-e2e --test size_budget -- --include-ignored

## build-lambda: the three deployable arm64 bootstraps in target/lambda/<function>/, as `sam build` makes them (cargo-lambda and zig from requirements-bench.txt, into .venv)
build-lambda: venv
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --arm64 --locked --bin scan-gate --bin deploy-notifier --bin offhours-scaler

## sam-build: `sam build` that succeeds on a fresh machine: installs the aarch64 target (rustup), cargo-lambda and zig (requirements-bench.txt, into .venv) and SAM CLI (requirements-sam.txt, into .venv/sam) first, then builds .aws-sam/build for `sam deploy` (docs/deploy.md)
sam-build: venv $(SAM_STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(VENV)/bin:$(CURDIR)/$(SAM_VENV)/bin:$$PATH" sam build

$(SAM_STAMP): requirements-sam.txt | venv
	@rm -f $(SAM_VENV)/.installed-*
	@test -x $(SAM_VENV)/bin/python || python3 -m venv $(SAM_VENV) || { python3 -m pip install --user --quiet virtualenv && python3 -m virtualenv $(SAM_VENV); }
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	@touch $@

clean:
	cargo clean
	rm -rf $(VENV) .aws-sam
