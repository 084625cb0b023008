"""Build the Gradescope autograder zip: `python -m autograder.build_bundle` (what `make gradescope-autograder` runs).

The zip holds setup.sh and run_autograder at its root, where Gradescope looks for them, and what the grader
needs beside them: its code, resnets_utils.py, the pinned requirements and the source notebooks it grades
(they hold the hidden tests). Nothing else: no other notebook, no data set, model, figure or photo.
`--grade-options "..."` are the grader's options for every submission (`--no-sandbox` where Gradescope's
image cannot build the sandbox; autograder/README.md), checked here so that a typo fails now, not on Gradescope.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import zipfile
from pathlib import Path

from resnets_utils import KIT_DIR
from tools.grading import grade
from tools.grading.nbgrader_course import graded_notebooks

BUNDLE = KIT_DIR / "build" / "gradescope-autograder.zip"
HERE = KIT_DIR / "autograder"
AT_ROOT = ("setup.sh", "run_autograder")  # Gradescope runs them from the root of the zip
KIT_FILES = ("resnets_utils.py", "requirements.txt", "requirements-dev.txt")
CODE = {"tools": ("__init__.py",), "tools/course": ("__init__.py", "notebook_source.py"),
        "autograder": ("__init__.py", "grade_submission.py")}  # and the whole of tools/grading/, the grader
GRADE_OPTIONS = "autograder/grade_options"  # read by grade_submission.py


class BadGradeOptions(ValueError):
    """--grade-options holds something the grader does not accept."""


def bundle_files() -> dict[str, Path]:
    """name in the zip -> file of the kit."""
    files = {name: HERE / name for name in AT_ROOT}
    files |= {name: KIT_DIR / name for name in KIT_FILES}
    files |= {f"{folder}/{name}": KIT_DIR / folder / name for folder, names in CODE.items() for name in names}
    files |= {f"tools/grading/{path.name}": path for path in sorted((KIT_DIR / "tools" / "grading").glob("*.py"))}
    files |= {f"notebooks/{name}.ipynb": KIT_DIR / "notebooks" / f"{name}.ipynb" for name in graded_notebooks()}
    # the Chinese edition's graded notebooks, the kit's compiled messages and the font of their figures (with its
    # licence): submissions of either edition are graded
    files |= {f"notebooks/zh/{name}.ipynb": KIT_DIR / "notebooks" / "zh" / f"{name}.ipynb" for name in graded_notebooks()
              if (KIT_DIR / "notebooks" / "zh" / f"{name}.ipynb").is_file()}
    files |= {path.relative_to(KIT_DIR).as_posix(): path for path in sorted((KIT_DIR / "locale").rglob("*")) if path.is_file()}
    return files


def checked_options(text: str) -> list[str]:
    """The grader's options in `text`, if its own command line accepts them (no submissions folder or --out)."""
    options = shlex.split(text)
    if {"--out", "--shard", "--worker"} & {option.split("=")[0] for option in options}:
        raise BadGradeOptions(f"--grade-options {text!r}: run_autograder chooses the folders itself; leave out --out, --shard and --worker")
    parser = grade.argument_parser()
    parser.exit_on_error = False
    try:  # parse_known_args: before Python 3.12, parse_args exits on unknown options even without exit_on_error
        unknown = parser.parse_known_args([*options, "submissions"])[1]
        problem = f"unrecognized arguments: {' '.join(unknown)}" if unknown else None
    except argparse.ArgumentError as error:
        problem = str(error)
    if problem:
        raise BadGradeOptions(f"--grade-options {text!r} holds options the grader does not accept ({problem}); "
                              "`python -m tools.grading.grade --help` lists them")
    return options


def build(path: Path = BUNDLE, options: str = "") -> Path:
    """Write the zip at `path`, replacing an older one only once the new one is complete."""
    files = bundle_files()
    missing = [str(source) for source in files.values() if not source.is_file()]
    if missing:
        raise FileNotFoundError(f"the autograder needs files that are not in the kit: {', '.join(missing)}")
    options = shlex.join(checked_options(options))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, source in files.items():
            bundle.write(source, name)  # keeps the file's mode: the two scripts stay executable
        if options:
            bundle.writestr(GRADE_OPTIONS, options + "\n")
    partial.replace(path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m autograder.build_bundle", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BUNDLE, help=f"the zip to write (default {BUNDLE.relative_to(KIT_DIR)})")
    parser.add_argument("--grade-options", default="", help='options for the grader, for example "--no-sandbox --timeout 120"')
    args = parser.parse_args(argv)
    try:
        path = build(args.out, args.grade_options)
    except (BadGradeOptions, FileNotFoundError) as error:
        sys.exit(f"Error: {error}")
    with zipfile.ZipFile(path) as bundle:
        count = len(bundle.namelist())
    print(f"Wrote {path} ({count} files, {path.stat().st_size / 1e6:.1f} MB); upload it as the assignment's autograder "
          f"(autograder/README.md). Grader options: {args.grade_options or 'none'}.")


if __name__ == "__main__":
    main()
