"""Write the student release: `python -m tools.grading.release` (what `make release` runs).

nbgrader replaces every solution region with a stub, removes the hidden tests and clears
the outputs; the kit adds what the notebooks need beside them. The result, `release/resnets/`,
is ready to zip or copy to a JupyterHub.
"""

from __future__ import annotations

import shutil

from resnets_utils import KIT_DIR
from tools.grading.nbgrader_course import ASSIGNMENT, build_course

RELEASE_DIR = KIT_DIR / "release"


def main() -> None:
    generated = build_course(KIT_DIR / "build" / "course")
    staging = RELEASE_DIR.with_name("release.partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(generated, staging / ASSIGNMENT)
    shutil.rmtree(RELEASE_DIR, ignore_errors=True)
    staging.rename(RELEASE_DIR)  # a half-written release never replaces a whole one
    notebooks = sorted(path.name for path in (RELEASE_DIR / ASSIGNMENT).glob("*.ipynb"))
    print(f"Wrote {RELEASE_DIR / ASSIGNMENT}: {len(notebooks)} notebooks ({', '.join(notebooks)}) and the files they need.")
    print("Hand it out as it is (zip it, or copy it to your JupyterHub); students run `pip install -r requirements.txt`.")


if __name__ == "__main__":
    main()
