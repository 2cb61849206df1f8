# The two commands: `make demo` runs the main job, `make test` runs the full suite.
# Both install what they need first (Debian packages when run as root, then a venv): the demo only
# its own few packages (deps/apt-demo.txt), the tests everything in deps/.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: deps demo-deps demo test bench clean

deps:
	bash scripts/install-deps.sh all

demo-deps:
	bash scripts/install-deps.sh demo

demo: demo-deps
	$(PY) scripts/demo.py

test: deps
	$(PY) -m pytest $(PYTEST_ARGS)

bench: deps
	$(PY) bench/run.py
	$(PY) bench/replication.py
	$(PY) bench/jvm_memory.py
	$(PY) bench/prune.py
	$(PY) bench/java_start.py
	$(PY) bench/reload.py

clean:
	rm -rf $(VENV) build *.egg-info
