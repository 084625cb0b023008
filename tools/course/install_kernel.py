"""Install the kit's Jupyter kernel, `resnets-kit`, into the running Python environment,
and turn TensorFlow's oneDNN kernels on by default there.

The kernel is the ordinary IPython kernel with one change: output that C libraries write
straight to the process's stderr (TensorFlow's start-up log lines) goes to the terminal that
runs Jupyter instead of into the notebook, so cells show only what the course prints.

oneDNN: on a CPU without AVX-512 TensorFlow 2.21 leaves its oneDNN kernels off unless
TF_ENABLE_ONEDNN_OPTS=1, and without them trains the course's ResNet50 about three times slower
(docs/development.md). TensorFlow reads
the variable once, when it is imported, and the notebooks import it before any of the kit's
code runs; so the default is set where every Python of this environment starts: a `.pth`
file in its site-packages, which Python runs at start-up (the kernel, `make` targets and
tests alike). It only sets a default: an explicit TF_ENABLE_ONEDNN_OPTS=0 (`make
test-oldest-python`) still turns oneDNN off.
"""

from __future__ import annotations

import json
import sys
import sysconfig
from pathlib import Path

from ipykernel.kernelspec import install

KERNEL_NAME = "resnets-kit"
ONEDNN_DEFAULT_FILE = "resnets_kit_onednn.pth"
# A .pth line that starts with "import" is run as code when Python starts.
ONEDNN_DEFAULT_LINE = 'import os; os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")\n'


def site_packages() -> Path:
    """The running environment's site-packages (where `pip install` puts packages)."""
    return Path(sysconfig.get_path("purelib", vars={"base": sys.prefix, "platbase": sys.prefix}))


def main() -> None:
    folder = Path(install(kernel_name=KERNEL_NAME, display_name="Python 3 (resnets kit)", prefix=sys.prefix))
    spec_file = folder / "kernel.json"
    spec = json.loads(spec_file.read_text())
    if "--IPKernelApp.capture_fd_output=False" not in spec["argv"]:
        spec["argv"].append("--IPKernelApp.capture_fd_output=False")
    spec_file.write_text(json.dumps(spec, indent=1))
    print(f"Installed the Jupyter kernel '{KERNEL_NAME}' in {folder}")
    default_file = site_packages() / ONEDNN_DEFAULT_FILE
    default_file.parent.mkdir(parents=True, exist_ok=True)
    default_file.write_text(ONEDNN_DEFAULT_LINE)
    print(f"TensorFlow's oneDNN kernels are on by default in this environment ({default_file})")


if __name__ == "__main__":
    main()
