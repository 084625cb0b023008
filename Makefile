# Two commands do everything on a fresh machine: `make lab` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.installed

.PHONY: lab test data real-data bench bench-data realism pretrained evaluate-pretrained release grade bench-grade

# Set-up: a virtual environment with the pinned packages and the kit itself (skipped when done).
$(READY): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "The kit needs Python 3.11; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m tools.install_kernel
	@command -v dot >/dev/null || echo "Note: graphviz is not installed; model diagrams fall back to a text summary (apt-get install graphviz)."
	touch $(READY)

lab: $(READY)
	$(BIN)/jupyter lab notebooks

test: $(READY)
	$(BIN)/python -m pytest tests $(wildcard notebooks/*.ipynb) --nbval --nbval-sanitize-with tools/nbval_sanitize.cfg

# The kit's SIGNS files; `make data FROM=DIR` builds them from your photos DIR/<digit>/*.jpg instead.
data: $(READY)
ifdef FROM
	$(BIN)/python -m tools.import_photos "$(FROM)"
else
	$(BIN)/python -m tools.make_signs
endif
	$(BIN)/python -m tools.draw_figures

# Downloads the real hand photos (checked, resumable) and converts them to SIGNS files in build/real-signs/.
real-data: $(READY)
	$(BIN)/python -m tools.download_real $(if $(MIRROR),--mirror "$(MIRROR)")

# Prints training throughput of the kit's recipe against keras.applications.ResNet50, and time to 95%.
bench: $(READY)
	$(BIN)/python -m tools.bench_training

# Prints how long the 1200-image SIGNS set takes to generate on this machine.
bench-data: $(READY)
	$(BIN)/python -m tools.make_signs --out build/bench-data

# Prints the accuracy on real photos of a model trained on generated data only.
realism: $(READY)
	$(BIN)/python -m tools.measure_realism $(if $(REAL),--real "$(REAL)")

# Trains the pretrained ResNet50 into build/pretrained/ (REAL=DIR: real photos; EPOCHS=N).
pretrained: $(READY)
	$(BIN)/python -m tools.train_pretrained $(if $(REAL),--real "$(REAL)") $(if $(EPOCHS),--epochs $(EPOCHS))

# Prints the shipped model's accuracy on the kit's test set and on the held-out real photos.
evaluate-pretrained: $(READY)
	$(BIN)/python -m tools.train_pretrained --evaluate models/resnet50_signs $(if $(REAL),--real "$(REAL)")

# Instructors: the student version of the notebooks, in release/resnets/ (nbgrader generate_assignment).
release: $(READY)
	$(BIN)/python -m tools.release

# Instructors: grade SUBMISSIONS=DIR holding <student_id>/<notebook>.ipynb into grades/ (nbgrader autograde).
grade: $(READY)
	@test -n "$(SUBMISSIONS)" || { echo "Usage: make grade SUBMISSIONS=path/to/submissions"; exit 2; }
	$(BIN)/python -m tools.grade "$(SUBMISSIONS)"

# Prints how many submissions per minute `make grade` handles on this machine.
bench-grade: $(READY)
	$(BIN)/python -m tools.bench_grade
