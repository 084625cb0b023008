"""Write the student release: `python -m tools.grading.release [--edition zh]` (what `make release [EDITION=zh]` runs).

nbgrader replaces every solution region with a stub, removes the hidden tests and clears
the outputs; the kit adds what the notebooks need beside them. The result, `release/resnets/`,
is ready to zip or copy to a JupyterHub. The Chinese edition's goes to `release-zh/resnets/`: the
same assignment, cells and grade ids, so `make grade` grades a class that mixes the two.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from resnets_utils import KIT_DIR
from tools.grading.nbgrader_course import ASSIGNMENT, EDITIONS, build_course


def release_dir(edition: str) -> Path:
    return KIT_DIR / ("release" if edition == "en" else f"release-{edition}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edition", choices=sorted(EDITIONS), default="en", help="en (English) or zh (Chinese)")
    edition = parser.parse_args().edition
    release = release_dir(edition)
    generated = build_course(KIT_DIR / "build" / f"course-{edition}", edition)
    staging = release.with_name(f"{release.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(generated, staging / ASSIGNMENT)
    shutil.rmtree(release, ignore_errors=True)
    staging.rename(release)  # a half-written release never replaces a whole one
    notebooks = sorted(path.name for path in (release / ASSIGNMENT).glob("*.ipynb"))
    print(f"Wrote {release / ASSIGNMENT}: {len(notebooks)} notebooks ({', '.join(notebooks)}) and the files they need.")
    print("Hand it out as it is (zip it, or copy it to your JupyterHub); students run `pip install -r requirements.txt`.")


if __name__ == "__main__":
    main()
