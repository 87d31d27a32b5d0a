# The few commands a newcomer needs; the README shows the same ones.
.PHONY: run test lint bench build

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
