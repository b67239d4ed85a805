# MicroGrad+ — every course command. `make help` lists them.
#
#   make lab     create/update the course environment and open JupyterLab on your copies of the labs (mylabs/)
#   make test    create/update the same environment and run every check
#
# Both are idempotent: with nothing to install, the environment step takes a second.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT     := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
PYTHON   ?= python3
VENV     ?= $(ROOT)/.venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.course-installed
RUN      := cd $(ROOT) && PATH="$(BIN):$$PATH"
PORT     ?= 8888
LAB      ?=
NB       ?=
ZIP      ?=
FROM     ?=
LAB_ARGS ?=
JOBS     ?= 2
STUDENT  ?=
ONLY_NEW ?=
SHARD    ?=
DB_URL   ?=

export PYTHONHASHSEED := 0
# where the course's offline machines keep dataset copies (the library searches them before the network)
export MICROGRAD_PLUS_DATA_FROM ?= $(abspath $(ROOT)/../shared/datasets)

# Checks and grading run several processes at once on few cores: one BLAS thread per
# process avoids oversubscription, which makes multi-threaded OpenBLAS many times slower.
SINGLE_THREADED := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: help env lab lab-instructor mylabs test-browser test test-fast check-dot export release export-mine reset-package \
        validate collect autograde feedback grades student-release data bench fuzz docs clean-grader \
        test-grader-full lint

help: ## list the commands
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# ---------------------------------------------------------------- environment
$(STAMP): requirements/course.txt pyproject.toml
	@test -x $(BIN)/python || { echo "creating the course environment in $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "error: Python >= 3.10 is needed ($(PYTHON) is $$($(PYTHON) --version))"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/course.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e $(ROOT)
	$(BIN)/jupyter labextension list 2>&1 | grep -q nbgrader || echo "warning: nbgrader's JupyterLab extensions are not listed by 'jupyter labextension list'"
	@touch $@

env: $(STAMP) ## create or update the course environment (.venv)

check-dot:
	@command -v dot >/dev/null || { \
	  echo "error: graphviz's 'dot' program is missing (lab 01 draws computation graphs with it)."; \
	  echo "  Debian/Ubuntu: sudo apt-get install -y graphviz"; \
	  echo "  Fedora:        sudo dnf install -y graphviz"; \
	  echo "  macOS:         brew install graphviz"; \
	  echo "  conda:         conda install -c conda-forge graphviz"; \
	  exit 1; }

# The learner's JupyterLab: their own copies (mylabs/, never overwritten) and no instructor tools.
LEARNER_JUPYTER := JUPYTER_CONFIG_PATH="$(ROOT)/grader/jupyter/learner$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
                   PYTHONPATH="$(ROOT)$${PYTHONPATH:+:$$PYTHONPATH}"

mylabs: $(STAMP) ## create your copies of new labs in mylabs/ (never overwrites; offers updates next to them)
	$(RUN) python -m grader.mylabs

lab: $(STAMP) check-dot mylabs ## open JupyterLab on your copies of the labs, mylabs/ (PORT=8888)
	$(RUN) $(LEARNER_JUPYTER) jupyter lab --port=$(PORT) --ServerApp.root_dir=$(ROOT) --LabApp.default_url=/lab/tree/mylabs \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

lab-instructor: $(STAMP) check-dot ## JupyterLab with nbgrader's instructor tools (formgrader, generate, course list)
	$(RUN) jupyter lab --port=$(PORT) --ServerApp.root_dir=$(ROOT) --LabApp.default_url=/lab/tree/solutions \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# ---------------------------------------------------------------- the literate build
export: $(STAMP) ## write micrograd_plus/ from the solution notebooks
	$(RUN) python -m grader.export

release: $(STAMP) ## labs/ from solutions/ with nbgrader (LAB=... for one), then export
	$(RUN) $(GRADING_ENV) python -m grader.release $(if $(LAB),--lab $(LAB))
	$(RUN) python -m grader.export

export-mine: $(STAMP) ## export YOUR lab (mylabs/) into the package: make export-mine LAB=02_tensor
	@test -n "$(LAB)" || { echo "usage: make export-mine LAB=02_tensor"; exit 2; }
	$(RUN) python -m grader.mylabs --lab $(LAB)
	$(RUN) python -m grader.export --from mylabs --lab $(LAB)
	@echo "micrograd_plus now runs your $(LAB). 'make reset-package' restores the reference."

reset-package: $(STAMP) ## restore the reference micrograd_plus/ (undo export-mine)
	$(RUN) git checkout -- micrograd_plus && git clean -fdq micrograd_plus && echo "micrograd_plus/ restored to the reference"

# ---------------------------------------------------------------- grading
validate: $(STAMP) ## check your lab (mylabs/): make validate LAB=01_value [NB=path/to.ipynb]
	@test -n "$(LAB)$(NB)" || { echo "usage: make validate LAB=01_value [NB=path]"; exit 2; }
	$(RUN) $(SINGLE_THREADED) python -m grader.validate $(if $(LAB),--lab $(LAB)) $(if $(NB),--notebook $(NB))

collect: $(STAMP) ## unpack an LMS download (Moodle, Canvas, plain names): make collect ZIP=downloads.zip LAB=01_value
	@test -n "$(ZIP)" -a -n "$(LAB)" || { echo "usage: make collect ZIP=downloads.zip LAB=01_value"; exit 2; }
	$(RUN) python -m grader.collect --zip $(abspath $(ZIP)) --lab $(LAB)

# Grading runs JOBS submissions at once (default here: every core; JOBS=N to choose), SHARD=i/n takes
# the i-th of n parts of the learners, DB_URL=postgresql://... names a shared gradebook (docs/INSTRUCTORS.md).
GRADING_ARGS = $(if $(LAB),--lab $(LAB)) $(if $(STUDENT),--student '$(STUDENT)') \
               $(if $(filter command line environment,$(origin JOBS)),--jobs $(JOBS)) $(if $(SHARD),--shard $(SHARD))
GRADING_ENV  = $(if $(DB_URL),MICROGRAD_PLUS_DB_URL='$(DB_URL)')

autograde: $(STAMP) ## grade submissions in parallel: make autograde [LAB=...] [STUDENT=...] [ONLY_NEW=1] [JOBS=N] [SHARD=i/n] [DB_URL=...]
	$(RUN) $(SINGLE_THREADED) $(GRADING_ENV) python -m grader.autograde $(GRADING_ARGS) $(if $(ONLY_NEW),--only-new)

feedback: $(STAMP) ## HTML feedback per learner, in parallel: make feedback [LAB=...] [STUDENT=...] [JOBS=N] [SHARD=i/n] [DB_URL=...]
	$(RUN) $(GRADING_ENV) python -m grader.feedback $(GRADING_ARGS)

grades: $(STAMP) ## grader/grades.csv (long) + Canvas and Moodle import files: make grades [LAB=...] [DB_URL=...]
	$(RUN) $(GRADING_ENV) python -m grader.grades $(if $(LAB),--lab $(LAB))

student-release: $(STAMP) ## a learner-only copy in grader/student-release/
	$(RUN) python -m grader.student_release

# ---------------------------------------------------------------- data, benchmark, docs
data: $(STAMP) ## download MNIST (or import it: make data FROM=/path/to/folder)
	$(RUN) python -m micrograd_plus.data fetch mnist $(if $(FROM),--from $(abspath $(FROM)))

fuzz: $(STAMP) ## random programs in micrograd_plus vs PyTorch: make fuzz N=10000 (prints mismatches=0 of N)
	$(RUN) $(SINGLE_THREADED) python -m tests.test_fuzz --n $(or $(N),10000)

bench: $(STAMP) ## micrograd_plus vs PyTorch vs hand-written NumPy on the course MLP, and lab 10's CNN vs PyTorch
	$(RUN) python bench/run.py
	$(RUN) $(SINGLE_THREADED) python bench/cnn.py

cifar: $(STAMP) ## lab 10's CNN on CIFAR-10 on one CPU core, 10 epochs (~20 min idle; EPOCHS=...) -> results/10_conv/
	$(RUN) $(SINGLE_THREADED) python -m micrograd_plus.cnn --epochs $(or $(EPOCHS),10) --out results/10_conv
.PHONY: cifar

bench-grading: $(STAMP) ## autograde time per lab and submissions per minute with JOBS=1 and all cores (~10 min)
	$(RUN) $(SINGLE_THREADED) python bench/grading.py $(if $(LAB),--labs $(LAB) --throughput-lab $(LAB))
.PHONY: bench-grading

docs: $(STAMP) ## regenerate docs/API.md from the docstrings
	$(RUN) python -m tools.apidoc

# Lab 11's project (needs a GPU for the full runs; results land in results/11_resnet/, which is committed)
EPOCHS      ?= 100
RESNET_ARGS ?=
.PHONY: resnet resnet-fast resnet-schedulers resnet-smoke
resnet: $(STAMP) ## ResNet-18 on CIFAR-10, the documents' recipe (Adam + cosine): make resnet EPOCHS=100
	$(RUN) python -m micrograd_plus.data fetch cifar10 $(if $(FROM),--from $(abspath $(FROM)))
	$(RUN) python -m micrograd_plus.resnet.train --epochs $(EPOCHS) --results results/11_resnet/adam_cosine $(RESNET_ARGS)

resnet-fast: $(STAMP) ## ResNet-18, a fast recipe (SGD-Nesterov, label smoothing, torch.compile, 30 epochs)
	$(RUN) python -m micrograd_plus.data fetch cifar10 $(if $(FROM),--from $(abspath $(FROM)))
	$(RUN) python -m micrograd_plus.resnet.train --epochs 30 --optimizer sgd --lr 0.2 --batch-size 512 \
	  --label-smoothing 0.1 --compile --results results/11_resnet/fast $(RESNET_ARGS)

resnet-schedulers: $(STAMP) ## Part 3.3: ResNet-18 with StepLR, cosine, warmup+cosine (EPOCHS each)
	$(RUN) python -m micrograd_plus.data fetch cifar10 $(if $(FROM),--from $(abspath $(FROM)))
	$(RUN) python -m micrograd_plus.resnet.compare_schedulers --results results/11_resnet/schedulers --epochs $(EPOCHS) $(RESNET_ARGS)

resnet-smoke: $(STAMP) ## the ResNet-18 command on the CPU, tiny budget (1 epoch, 256 images, width 8)
	$(RUN) $(SINGLE_THREADED) python -m micrograd_plus.resnet.train --device cpu --epochs 1 --width 8 \
	  --batch-size 64 --train-subset 256 --test-subset 256 --no-resume --results runs/resnet-smoke

# ---------------------------------------------------------------- checks
# ruff and mypy (settings in pyproject.toml) on every Python file of the course but the notebooks
# (the generated package is checked as generated; fix a finding in its source notebook)
LINT_PATHS := micrograd_plus tools bench grader tests

lint: $(STAMP) ## ruff (lint and format check) and mypy on the library, grader/, tools/, bench/ and tests/
	$(RUN) ruff check $(LINT_PATHS)
	$(RUN) ruff format --check $(LINT_PATHS)
	$(RUN) mypy $(LINT_PATHS)

test: $(STAMP) check-dot lint ## every check: lint, generated files in sync, library, notebooks (nbval), grader, docker lint
	$(RUN) $(SINGLE_THREADED) python -m pytest -n $(JOBS) --dist worksteal --durations=25 --cov=micrograd_plus --cov-report=term --cov-fail-under=90 --doctest-modules tests micrograd_plus grader/export.py grader/checks.py grader/verdicts.py grader/collect.py grader/parallel.py grader/database.py grader/logfilter.py grader/hardening.py grader/guard.py grader/partial_credit.py grader/student_release.py
	@# one notebook at a time: kernels started at the same instant can race for the same ports
	$(RUN) $(SINGLE_THREADED) python -m pytest -p no:xdist --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider solutions

test-browser: $(STAMP) check-dot ## the learner's JupyterLab in headless Chromium (screenshots in grader/browser-test/)
	$(RUN) $(SINGLE_THREADED) MICROGRAD_PLUS_BROWSER_TEST=1 python -m pytest -p no:xdist -p no:cacheprovider -s tests/test_browser.py

test-grader-full: $(STAMP) ## every attack class of the grading regression suite (slow)
	$(RUN) $(SINGLE_THREADED) GRADING_FULL=1 python -m pytest -p no:xdist tests/test_grading_attacks.py

PER ?= region
# 10_conv only with the weights of a full run next to its solution (docs/INSTRUCTORS.md)
PARTIAL_CREDIT_LABS ?= 01_value 02_tensor 03_layers 04_losses 05_optimizers 06_mnist 07_benchmark 08_backprop 09_dynamics \
	$(if $(wildcard solutions/10_conv/cnn_weights.npz),10_conv) 11_resnet
.PHONY: partial-credit test-partial-credit-full
partial-credit: $(STAMP) ## blank each exercise of a lab in turn, grade it: make partial-credit LAB=04_losses [PER=cell]
	@test -n "$(LAB)" || { echo "usage: make partial-credit LAB=04_losses [PER=region|cell]"; exit 2; }
	$(RUN) $(SINGLE_THREADED) python -m grader.partial_credit --lab $(LAB) --per $(PER) --jobs $(JOBS)

test-partial-credit-full: $(STAMP) ## the blank-one-exercise check on every lab that records its checks (slow)
	$(RUN) $(SINGLE_THREADED) python -m grader.partial_credit $(foreach l,$(PARTIAL_CREDIT_LABS),--lab $(l)) --per $(PER) --jobs $(JOBS)

test-fast: $(STAMP) ## library tests only (no nbgrader runs, no training)
	$(RUN) $(SINGLE_THREADED) python -m pytest -n $(JOBS) -m "not slow" tests

-include docker/docker.mk
