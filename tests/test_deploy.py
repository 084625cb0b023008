"""The launchers for grading on a cluster (deploy/) and the kit's Dockerfile, checked as far as this machine allows.

A few seconds, no kernels and no cluster. What is not here, and why: kubeconform is not installed (and is
not downloaded: it comes from GitHub), and kubectl's own validation asks an API server, which this machine
has none of; Debian's slurm-client installs, but `sbatch --test-only` asks a running slurmctld (a one-node
Slurm cluster was tried by hand, deploy/README.md says how it went); `docker build` needs a Docker daemon and
the python:3.13-slim-bookworm base image from Docker Hub. So the manifest's structure is checked against what
the Kubernetes API requires of an Indexed Job (and against the Kubernetes schemas when the
kubernetes-validate package is installed), the Slurm script and the pods' shell command are run with a
stand-in for Python that records its arguments, which tools/grading/grade.py's own argument parser must accept,
and the Dockerfile's install steps are compared with the Makefile's set-up.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.grading import grade, grade_outputs

KIT = Path(__file__).resolve().parents[1]
MANIFEST = KIT / "deploy" / "kubernetes-grade.yaml"
SLURM_SCRIPT = KIT / "deploy" / "slurm-grade.sbatch"


def documents() -> list[dict]:
    return [document for document in yaml.safe_load_all(MANIFEST.read_text()) if document]


def jobs() -> tuple[dict, dict]:
    """The grading Job and the merge Job of the manifest."""
    found = {document["metadata"]["name"]: document for document in documents() if document["kind"] == "Job"}
    assert sorted(found) == ["resnets-grade", "resnets-merge"]
    return found["resnets-grade"], found["resnets-merge"]


def container(job: dict) -> dict:
    (only,) = job["spec"]["template"]["spec"]["containers"]
    return only


def cpus(quantity: str) -> float:
    """A Kubernetes CPU quantity ("4", "500m") in CPUs."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def pod_environment(job: dict, index: int | None = None) -> dict[str, str]:
    """The variables Kubernetes gives the container: its env (values and the downward API's resources), and
    JOB_COMPLETION_INDEX in an Indexed Job."""
    box = container(job)
    environment = {}
    for variable in box.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        else:
            field = variable["valueFrom"]["resourceFieldRef"]
            kind, resource = field["resource"].split(".")
            divisor = cpus(field.get("divisor", "1"))
            environment[variable["name"]] = str(math.ceil(cpus(box["resources"][kind][resource]) / divisor))
    if index is not None:
        environment["JOB_COMPLETION_INDEX"] = str(index)
    return environment


@pytest.fixture
def python_stand_in(tmp_path) -> Path:
    """A folder with `python`, which writes where it ran and its arguments to $RECORD, as JSON, and exits 0."""
    folder = tmp_path / "bin"
    folder.mkdir()
    stand_in = folder / "python"
    stand_in.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                        "json.dump({'cwd': os.getcwd(), 'argv': sys.argv[1:]}, open(os.environ['RECORD'], 'w'))\n")
    stand_in.chmod(0o755)
    return folder


def run_recorded(command: list[str], environment: dict[str, str], tmp_path: Path) -> dict:
    """Run `command` with `environment` (and nothing else but a PATH) and return what the stand-in recorded."""
    record = tmp_path / "record.json"
    record.unlink(missing_ok=True)
    result = subprocess.run(command, env={"PATH": "/usr/bin:/bin", **environment, "RECORD": str(record)},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(record.read_text())


def run_pod(job: dict, index: int | None, python_stand_in: Path, tmp_path: Path, **extra: str) -> dict:
    """What the container of `job` runs, as pod `index`, with the stand-in for the image's python."""
    box = container(job)
    environment = {**pod_environment(job, index), **extra, "PATH": f"{python_stand_in}:/usr/bin:/bin"}
    return run_recorded([*box["command"], *box["args"]], environment, tmp_path)


def grader_arguments(recorded: dict):
    """The arguments that `python -m tools.grading.grade ...` gets, parsed by tools/grading/grade.py's own parser."""
    assert recorded["argv"][:2] == ["-m", "tools.grading.grade"], recorded
    return grade.argument_parser().parse_args(recorded["argv"][2:])


# --- Kubernetes ---------------------------------------------------------------------------------


def test_the_manifest_is_an_indexed_job_with_one_pod_per_shard():
    job, _ = jobs()
    spec = job["spec"]
    assert (job["apiVersion"], spec["completionMode"]) == ("batch/v1", "Indexed")
    shards = spec["completions"]
    assert isinstance(shards, int) and shards >= 1 and 1 <= spec["parallelism"] <= shards
    assert pod_environment(job)["SHARDS"] == str(shards), "SHARDS must say the same N as completions (EDIT 1)"
    # What the API refuses otherwise: backoffLimitPerIndex and podFailurePolicy need restartPolicy Never, and
    # backoffLimitPerIndex wants backoffLimit unset.
    assert spec["template"]["spec"]["restartPolicy"] == "Never" and "backoffLimit" not in spec
    names = {box["name"] for box in spec["template"]["spec"]["containers"]}
    for rule in spec["podFailurePolicy"]["rules"]:
        assert rule["action"] in {"FailJob", "FailIndex", "Ignore", "Count"}
        assert rule.get("onExitCodes", {}).get("containerName", container(job)["name"]) in names
    refusal = next(rule for rule in spec["podFailurePolicy"]["rules"] if "onExitCodes" in rule)
    assert refusal["action"] == "FailJob" and refusal["onExitCodes"]["values"] == [2], "the grader's refusal ends the Job"


def test_the_pods_run_as_a_non_root_user_without_a_service_account_token_or_privileges():
    image_user = re.search(r"^USER (\d+):(\d+)$", (KIT / "Dockerfile").read_text(), flags=re.M).groups()
    for job in jobs():
        pod = job["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
        assert (str(context["runAsUser"]), str(context["runAsGroup"])) == image_user
        box = container(job)["securityContext"]
        assert box["allowPrivilegeEscalation"] is False and box["capabilities"]["drop"] == ["ALL"]
        assert not box.get("privileged", False)
        resources = container(job)["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])


def test_the_sandbox_settings_are_those_bubblewrap_needs_and_marked_for_removal():
    """A user-namespaced pod with an unmasked /proc (which the API accepts only together) and no seccomp or
    AppArmor filter; each line marked SANDBOX, which the comments say to remove with --no-sandbox."""
    job, merge = jobs()
    pod = job["spec"]["template"]["spec"]
    assert pod["hostUsers"] is False and container(job)["securityContext"]["procMount"] == "Unmasked"
    assert pod["securityContext"]["seccompProfile"]["type"] == "Unconfined"
    assert pod["securityContext"]["appArmorProfile"]["type"] == "Unconfined"
    marked = [line for line in MANIFEST.read_text().splitlines() if "# SANDBOX" in line]
    assert [line.split(":")[0].strip() for line in marked] == ["hostUsers", "type", "type", "procMount"]
    assert "--no-sandbox" in MANIFEST.read_text()
    assert merge["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"


def test_each_pod_grades_its_own_shard_with_a_command_the_grader_accepts(python_stand_in, tmp_path):
    job, _ = jobs()
    shards, workers = job["spec"]["completions"], int(pod_environment(job)["WORKERS"])
    for index in range(shards):
        args = grader_arguments(run_pod(job, index, python_stand_in, tmp_path))
        assert args.shard == (index + 1, shards)
        assert args.submissions == Path("/submissions")
        assert args.out == Path(f"/grades/shard-{index + 1}-of-{shards}")
        assert args.workers == workers == cpus(container(job)["resources"]["limits"]["cpu"])
        assert args.sandbox is True


def test_grade_options_reach_the_grader_in_the_pod(python_stand_in, tmp_path):
    job, _ = jobs()
    args = grader_arguments(run_pod(job, 0, python_stand_in, tmp_path, GRADE_OPTIONS="--no-sandbox --timeout 120"))
    assert (args.sandbox, args.timeout, args.shard) == (False, 120, (1, job["spec"]["completions"]))


def test_the_volume_holds_the_submissions_read_only_and_the_grades(python_stand_in, tmp_path):
    job, merge = jobs()
    for each in (job, merge):
        volumes = {volume["name"]: volume for volume in each["spec"]["template"]["spec"]["volumes"]}
        mounts = {mount["mountPath"]: mount for mount in container(each)["volumeMounts"]}
        assert {mount["name"] for mount in mounts.values()} <= set(volumes)
        assert all("claimName" in volume["persistentVolumeClaim"] for volume in volumes.values())
        assert mounts["/grades"]["subPath"] == "grades" and not mounts["/grades"].get("readOnly")
    grading_mounts = {mount["mountPath"]: mount for mount in container(job)["volumeMounts"]}
    assert grading_mounts["/submissions"]["readOnly"] is True and grading_mounts["/submissions"]["subPath"] == "submissions"


def test_the_merge_job_waits_suspended_and_merges_every_shard_folder(python_stand_in, tmp_path):
    job, merge = jobs()
    assert merge["spec"]["suspend"] is True and "completionMode" not in merge["spec"]
    assert container(merge)["image"] == container(job)["image"], "both Jobs run the same image (EDIT 2)"
    claims = [[volume["persistentVolumeClaim"]["claimName"] for volume in each["spec"]["template"]["spec"]["volumes"]]
              for each in (job, merge)]
    assert claims[0] == claims[1], "both Jobs use the same volume (EDIT 2)"
    recorded = run_pod(merge, None, python_stand_in, tmp_path)
    assert recorded["argv"][:3] == ["-m", "tools.grading.grade", "merge"]
    args = grade_outputs.argument_parser().parse_args(recorded["argv"][2:])
    shards = job["spec"]["completions"]
    (pattern,) = args.folders  # no /grades here: the shell leaves the pattern to match the shards' folders
    assert all(fnmatch.fnmatch(f"/grades/shard-{i}-of-{shards}/", str(pattern) + "/") for i in range(1, shards + 1))
    assert args.out == Path("/grades") and not args.force


def test_the_network_policy_cuts_the_network_of_both_jobs_pods():
    (policy,) = [document for document in documents() if document["kind"] == "NetworkPolicy"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    for job in jobs():
        assert selector.items() <= job["spec"]["template"]["metadata"]["labels"].items()
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in policy["spec"] and "egress" not in policy["spec"], "no rule: nothing allowed"


def test_the_two_things_to_edit_are_marked():
    text = MANIFEST.read_text()
    marked = {number: [line.split(":")[0].strip() for line in text.splitlines()
                       if f"# EDIT {number}:" in line and not line.startswith("#")] for number in (1, 2)}
    assert marked == {1: ["completions", "parallelism", "value"], 2: ["image", "claimName", "image", "claimName"]}
    slurm = SLURM_SCRIPT.read_text().splitlines()
    assert [slurm[slurm.index(line) + 1] for line in slurm if line.startswith("# EDIT 1:")][0].startswith("#SBATCH --array=")
    assert [slurm[slurm.index(line) + 1] for line in slurm if line.startswith("# EDIT 2:")][0].startswith("SUBMISSIONS=")


def test_the_manifest_matches_the_kubernetes_schemas():
    """Where kubernetes-validate is installed (PyPI; 110 MB of Kubernetes OpenAPI schemas, so not a pin of the kit):
    every field known and typed right, no unknown one, for Kubernetes 1.33 (user namespaces on by default) and the
    newest it knows."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for version in ("1.33.0", kubernetes_validate.latest_version()):
        for document in documents():
            kubernetes_validate.validate(document, version, strict=True)


# --- Slurm --------------------------------------------------------------------------------------


def directives() -> dict[str, str]:
    """The script's #SBATCH options, as sbatch reads them (up to the first line that is not a comment)."""
    found = {}
    for line in SLURM_SCRIPT.read_text().splitlines()[1:]:
        if line and not line.startswith("#"):
            break
        if line.startswith("#SBATCH "):
            name, _, value = line.removeprefix("#SBATCH ").partition("=")
            found[name] = value
    return found


def run_task(task: int, python_stand_in: Path, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    """Run the Slurm script as array task `task` would run, from a kit whose .venv/bin/python is the stand-in."""
    kit = tmp_path / "kit"
    (kit / "tools" / "grading").mkdir(parents=True, exist_ok=True)
    (kit / "tools" / "grading" / "grade.py").touch()
    (kit / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    (kit / ".venv" / "bin" / "python").unlink(missing_ok=True)
    (kit / ".venv" / "bin" / "python").symlink_to(python_stand_in / "python")
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "SLURM_SUBMIT_DIR": str(kit),
                   "SLURM_ARRAY_TASK_ID": str(task), "SLURM_CPUS_PER_TASK": directives()["--cpus-per-task"],
                   "RECORD": str(tmp_path / "record.json"), **extra}
    return subprocess.run(["bash", str(SLURM_SCRIPT)], env=environment, capture_output=True, text=True, timeout=30)


def test_the_slurm_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(SLURM_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_slurm_script_is_an_array_of_n_shards_with_cpus_memory_and_time():
    options = directives()
    assert re.fullmatch(r"1-\d+", options["--array"]), "the array runs shards 1 to N"
    assert int(options["--cpus-per-task"]) >= 1
    assert re.fullmatch(r"\d+G", options["--mem-per-cpu"]) and re.fullmatch(r"\d\d:\d\d:\d\d", options["--time"])


def test_each_slurm_task_grades_its_own_shard_with_a_command_the_grader_accepts(python_stand_in, tmp_path):
    shards = int(directives()["--array"].split("-")[1])
    for task in range(1, shards + 1):
        result = run_task(task, python_stand_in, tmp_path)
        assert result.returncode == 0, result.stderr
        recorded = json.loads((tmp_path / "record.json").read_text())
        args = grader_arguments(recorded)
        assert recorded["cwd"] == str(tmp_path / "kit"), "tools.grading.grade runs from the kit's folder"
        assert args.shard == (task, shards)
        assert args.submissions == tmp_path / "home" / "submissions"
        assert args.out == tmp_path / "kit" / "grades" / f"shard-{task}-of-{shards}"
        assert args.workers == int(directives()["--cpus-per-task"]) and args.sandbox is True


def test_a_slurm_task_submitted_again_alone_keeps_n_and_takes_the_options(python_stand_in, tmp_path):
    """`sbatch --array=7 ...` runs task 7 with an array of one: the script still grades shard 7 of N."""
    shards = int(directives()["--array"].split("-")[1])
    result = run_task(shards, python_stand_in, tmp_path, SLURM_ARRAY_TASK_COUNT="1", SUBMISSIONS="/scratch/class",
                      GRADE_OPTIONS="--no-sandbox --memory 6")
    assert result.returncode == 0, result.stderr
    args = grader_arguments(json.loads((tmp_path / "record.json").read_text()))
    assert (args.shard, args.submissions, args.sandbox, args.memory) == ((shards, shards), Path("/scratch/class"), False, 6)


def test_a_slurm_task_outside_1_to_n_or_outside_the_kit_is_refused(python_stand_in, tmp_path):
    shards = int(directives()["--array"].split("-")[1])
    result = run_task(shards + 1, python_stand_in, tmp_path)
    assert result.returncode == 2 and f"Task {shards + 1} is not a shard of 1-{shards}" in result.stderr
    result = run_task(1, python_stand_in, tmp_path, SLURM_SUBMIT_DIR=str(tmp_path))
    assert result.returncode == 2 and "is not a set-up kit" in result.stderr
    assert not (tmp_path / "record.json").exists()


def test_the_slurm_merge_step_is_a_dependent_job_running_what_make_merge_grades_runs():
    header = SLURM_SCRIPT.read_text().replace("\\\n#", "")
    merge_line = next(line for line in header.splitlines() if "--dependency=afterok:" in line)
    assert "job=$(sbatch --parsable deploy/slurm-grade.sbatch)" in header and "afterok:${job%%;*}" in merge_line
    wrapped = shlex.split(shlex.split(merge_line.lstrip("# "))[-1])
    assert wrapped[:3] == [".venv/bin/python", "-m", "tools.grading.grade"]
    args = grade_outputs.argument_parser().parse_args(wrapped[3:])
    assert (args.command, args.folders, args.out) == ("merge", [Path("grades/shard-*-of-*/")], Path("grades"))
    recipe = re.search(r"^merge-grades:.*\n\t(.*)$", (KIT / "Makefile").read_text(), flags=re.M)[1]
    assert shlex.split(recipe.replace("$(BIN)/python", ".venv/bin/python").replace(" $(MERGE_OPTIONS)", "")) == wrapped


# --- The image ----------------------------------------------------------------------------------


SPELLINGS = {"$(PYTHON)": "python", "$(BIN)/python": ".venv/bin/python", "$(VENV)": ".venv"}  # the Makefile's names
QUIET = {"--quiet", "--no-cache-dir", "--clear"}  # flags that change what is printed or kept, not what is installed


def install_steps(commands: list[str]) -> list[str]:
    """The commands that make the environment (a venv, then its python), spelled alike, quiet flags left out."""
    steps = [" ".join(SPELLINGS.get(word, word) for word in shlex.split(command) if word not in QUIET) for command in commands]
    return [step for step in steps if step.startswith(".venv/bin/python ") or " -m venv " in step]


def makefile_setup() -> list[str]:
    """The recipe of the Makefile's $(READY) target, the set-up that `make lab` and `make test` run."""
    recipe = re.search(r"^\$\(READY\):.*\n((?:\t.*\n)+)", (KIT / "Makefile").read_text(), flags=re.M)[1]
    return install_steps([line.strip().lstrip("@") for line in recipe.splitlines()])


def dockerfile_setup() -> list[str]:
    text = (KIT / "Dockerfile").read_text().replace("\\\n", " ")
    runs = [line.removeprefix("RUN ") for line in text.splitlines() if line.startswith("RUN ")]
    return install_steps([part.strip() for run in runs for part in run.split("&&")])


def test_the_dockerfile_installs_the_environment_as_the_makefile_does():
    assert dockerfile_setup() == makefile_setup()
    assert makefile_setup() == [  # so that a parse that finds nothing cannot pass
        "python -m venv .venv",
        ".venv/bin/python -m pip install --upgrade pip",
        ".venv/bin/python -m pip install -r requirements-dev.txt",
        ".venv/bin/python -m pip install --no-deps -e .",
        ".venv/bin/python -m tools.course.install_kernel",
    ]


def test_the_image_has_a_supported_python_the_sandbox_and_graphviz():
    dockerfile = (KIT / "Dockerfile").read_text()
    supported = re.search(r"^SUPPORTED_PYTHONS := (.*)$", (KIT / "Makefile").read_text(), flags=re.M)[1].split()
    python = re.search(r"^FROM python:(3\.\d+)-slim-(\w+)$", dockerfile, flags=re.M)
    assert python and python[1] in supported
    assert re.search(r"apt-get install -y --no-install-recommends bubblewrap graphviz", dockerfile)
    copied = re.findall(r"^COPY --chown=\S+ (.+) \S+$", dockerfile, flags=re.M)
    assert copied[0].split() == ["requirements.txt", "requirements-dev.txt"], "what requirements-dev.txt needs (-r requirements.txt)"
    assert "-r requirements.txt" in (KIT / "requirements-dev.txt").read_text()


def test_the_image_leaves_out_environments_builds_grades_and_git():
    ignored = [line for line in (KIT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    for path in (".git", ".venv", ".venv-python3.11", "build/", "release/", "grades/", "submissions/"):
        assert any(fnmatch.fnmatch(path.rstrip("/"), pattern.rstrip("/")) for pattern in ignored), path
    for needed in ("datasets", "models", "images", "notebooks", "tools", "resnets_utils.py", "pyproject.toml"):
        assert not any(fnmatch.fnmatch(needed, pattern.rstrip("/")) for pattern in ignored), needed
