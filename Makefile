# The few commands a newcomer needs; the README shows the same ones.
.PHONY: run test lint bench build lock

run:  ## the embedded default: artreg server on 127.0.0.1:8080, data in ./data
	python3 -m venv .venv && .venv/bin/pip install --quiet -e ".[server]" && .venv/bin/artreg server --data ./data

test:  ## linters, type checks and every test
	./scripts/test

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy && .venv/bin/cfn-lint template.yaml

bench:
	.venv/bin/python -m benchmarks

build:  ## the SAM application (needs aws-sam-cli)
	sam build

# The layer's dependencies for the Lambda platform (arm64, CPython 3.12), at the versions the test environment
# runs (.venv), with their hashes; the Lambda runtime's boto3 and botocore are left out. The layer is built
# from the lock only; tests/infra/test_build.py checks it against .venv.
lock:  ## layer/requirements.lock from layer/requirements.txt (needs the dev extras: uv)
	.venv/bin/python -m pip freeze --exclude-editable > .venv/test-environment.txt
	cd layer && ../.venv/bin/uv pip compile requirements.txt --quiet --python-platform aarch64-manylinux2014 \
		--python-version 3.12 --only-binary :all: --generate-hashes --no-annotate \
		--constraint ../.venv/test-environment.txt --custom-compile-command "make lock" \
		--no-emit-package botocore --no-emit-package urllib3 --no-emit-package python-dateutil \
		--no-emit-package six --no-emit-package jmespath -o requirements.lock
