"""Install the kit's Jupyter kernel, `resnets-kit`, into the running Python environment.

It is the ordinary IPython kernel with one change: output that C libraries write straight
to the process's stderr (TensorFlow's start-up log lines) goes to the terminal that runs
Jupyter instead of into the notebook, so cells show only what the course prints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ipykernel.kernelspec import install

KERNEL_NAME = "resnets-kit"


def main() -> None:
    folder = Path(install(kernel_name=KERNEL_NAME, display_name="Python 3 (resnets kit)", prefix=sys.prefix))
    spec_file = folder / "kernel.json"
    spec = json.loads(spec_file.read_text())
    if "--IPKernelApp.capture_fd_output=False" not in spec["argv"]:
        spec["argv"].append("--IPKernelApp.capture_fd_output=False")
    spec_file.write_text(json.dumps(spec, indent=1))
    print(f"Installed the Jupyter kernel '{KERNEL_NAME}' in {folder}")


if __name__ == "__main__":
    main()
