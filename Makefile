# allocsim: install, run and test the teaching kit.
#
#   make lab        create .venv if needed, install the kit, start JupyterLab in notebooks/
#   make test       the same install, chromium for the browser tests, then the whole test suite
#   make check      a workshop health check in seconds (packages, extensions, a run, a figure)
#   make wheelhouse download every wheel into wheelhouse/; make lab then installs offline
#
# Variables you may set:  PY=python3.12  LAB_ARGS='--port=8890'  PYTEST_ARGS='-k buddy -x'

PY          ?= python3
VENV        ?= .venv
VPY         := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
WHEELHOUSE  ?= wheelhouse
# With wheels in $(WHEELHOUSE)/ (make wheelhouse), installs use them and never the network.
PIP_OFFLINE := $(if $(wildcard $(WHEELHOUSE)/*.whl),--no-index --find-links $(WHEELHOUSE))
CHROMIUM    ?= /usr/bin/chromium
LAB_ARGS    ?=
PYTEST_ARGS ?=

# JupyterLab refuses to start as root unless told to; developers' machines and CI run as root.
ifeq ($(shell id -u),0)
ROOT_ARGS := --allow-root
endif

# Terminals off: whoever has the token gets a shell as the user running `make lab` (as root, a
# root shell). LAB_ARGS='--ServerApp.terminals_enabled=True' turns them back on (then this
# default is left out: Jupyter refuses an option given twice).
LAB_SAFE_ARGS = $(if $(findstring terminals_enabled,$(LAB_ARGS)),,--ServerApp.terminals_enabled=False)

.DEFAULT_GOAL := help
.PHONY: help venv warm lab check wheelhouse chromium test handouts notebooks nbcheck bench clean distclean

help:
	@echo "make lab        start JupyterLab on 127.0.0.1 (token on, terminals off) in notebooks/"
	@echo "make check      workshop health check (under 30 s once installed)"
	@echo "make wheelhouse download every wheel for offline installs (make lab uses them)"
	@echo "make test       run the whole test suite (installs chromium via apt-get if missing)"
	@echo "make handouts   build the handouts: HTML, A4 PDF, index, answer key (PAPER=letter)"
	@echo "make notebooks  rewrite notebooks/*.ipynb from their .md sources (drops outputs)"
	@echo "make nbcheck    before a commit: pairs agree, staged notebooks carry no outputs"
	@echo "make bench      run benchmarks/bench.py"
	@echo "make warm       compile the simulation core into its cache (lab, check, test do it)"
	@echo "make clean      remove caches and build output (make distclean also removes .venv)"

# --- install -----------------------------------------------------------------
# .venv/.installed is newer than pyproject.toml once the install has succeeded,
# so a repeated `make test` or `make lab` skips pip entirely.
venv: $(STAMP)

# Debian and Ubuntu ship Python's venv module separately (python3-venv); say so plainly.
$(VPY):
	@$(PY) -c 'import ensurepip, venv' >/dev/null 2>&1 || { \
	    echo "$(PY) cannot create a virtual environment: the venv module is missing."; \
	    echo "On Debian or Ubuntu: sudo apt-get install python3-venv   (then run make again)"; \
	    exit 1; }
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install --disable-pip-version-check $(PIP_OFFLINE) -e '.[test]'
	@touch $@

# Compile the simulation core into numba's on-disk cache (or find it there: under a second), so
# that the first run in a notebook does not wait for the compiler.
warm: venv
	@$(VPY) -m allocsim.engine

# Every wheel the kit and its tests need, for a room of machines without (good) network: copy
# the clone with its wheelhouse/ to each machine (same OS and Python version), then make lab.
wheelhouse: | $(VPY)
	$(VPY) -m pip download --disable-pip-version-check --dest $(WHEELHOUSE) \
	    pip 'setuptools>=77' wheel '.[test]'
	@rm -f $(WHEELHOUSE)/allocsim-*
	@echo "wheelhouse: $$(ls $(WHEELHOUSE) | wc -l) files in $(WHEELHOUSE)/; make lab now installs from them"

# --- run ---------------------------------------------------------------------
# LAB_ARGS may move the server off 127.0.0.1 (--ip=...), but not with an empty token: that
# would serve code execution to the whole network without a password.
lab: venv warm
	@ip=127.0.0.1; token=auto; prev=; \
	for a in $(LAB_ARGS); do \
	    case "$$prev" in --ip|--ServerApp.ip|--NotebookApp.ip) ip="$$a";; esac; \
	    case "$$a" in \
	        --ip=*|--ServerApp.ip=*|--NotebookApp.ip=*) ip="$${a#*=}";; \
	        --IdentityProvider.token=*|--ServerApp.token=*|--NotebookApp.token=*) token="$${a#*=}";; \
	    esac; \
	    prev="$$a"; \
	done; \
	case "$$ip" in \
	    127.*|localhost|::1|"[::1]") ;; \
	    *) if [ -z "$$token" ]; then \
	           echo "make lab: refusing to serve on '$$ip' (not loopback) with an empty token;" \
	                "drop the empty token from LAB_ARGS or keep --ip=127.0.0.1" >&2; \
	           exit 2; \
	       fi;; \
	esac
	@mkdir -p $(CURDIR)/notebooks
	$(VPY) -m jupyterlab --ip=127.0.0.1 --no-browser --notebook-dir=$(CURDIR)/notebooks $(LAB_SAFE_ARGS) $(ROOT_ARGS) $(LAB_ARGS)

PAPER ?= a4
handouts: venv
	$(VPY) -m allocsim.handouts --paper $(PAPER)

check: venv warm
	$(VPY) -m allocsim.widgets check

# The chapters' sources are notebooks/NN-name.md (jupytext MyST), paired with the .ipynb.
notebooks: venv
	$(VPY) notebooks/_sync.py

nbcheck: venv
	$(VPY) notebooks/_sync.py --check

bench: venv
	$(VPY) benchmarks/bench.py

# --- test --------------------------------------------------------------------
# Never `playwright install`: the tests drive Debian's chromium through executable_path.
chromium:
	@if [ -x "$(CHROMIUM)" ]; then \
	    echo "chromium: $(CHROMIUM) is present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "chromium: $(CHROMIUM) missing, installing it with apt-get"; \
	    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	        chromium fonts-dejavu-core; } || true; \
	fi; \
	if [ ! -x "$(CHROMIUM)" ]; then \
	    echo "########################################################################"; \
	    echo "WARNING: $(CHROMIUM) is missing and could not be installed"; \
	    echo "WARNING: (needs root and apt-get). The browser tests will be SKIPPED."; \
	    echo "WARNING: Install Debian's chromium package to run them."; \
	    echo "########################################################################"; \
	fi

test: venv chromium warm
	$(VPY) -m pytest $(PYTEST_ARGS)

# --- tidy ----------------------------------------------------------------------
clean:
	rm -rf build dist handouts test-output .pytest_cache .hypothesis .ruff_cache *.egg-info
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) \
	    -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
