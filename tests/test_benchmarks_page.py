"""Figures come from records, not prose: every benchmark command appends one, and the pages show the newest."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

import resnets_utils
from tools.docs import benchmarks
from tools.docs.benchmarks import BENCHMARKS, RecordsError, latest, load_records, page, record


@pytest.fixture(autouse=True)
def no_onednn_cap(monkeypatch):
    """A developer may have held oneDNN to fewer instructions (docs/development.md); these tests record as
    on a CPU without the cap, and the one about the cap sets it itself."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)


def entry(command: str, kind: str, date: str, **figures) -> dict:
    flags = {"AVX2 only": ["avx2"], "AMX": ["avx2", "avx512f", "avx512_bf16", "amx_tile"]}[kind]
    return {"command": command, "commit": "abc1234", "cpu": {"model": f"a {kind} CPU", "flags": flags, "kind": kind, "cores": 2},
            "date": date, "figures": figures}


def test_the_benchmark_pages_match_the_records():
    stale = benchmarks.out_of_date(load_records(benchmarks.RECORDS))
    assert not stale, f"run `make benchmarks-page`: {', '.join(str(path) for path in stale)} differ from benchmarks/records.jsonl"


def test_every_benchmark_target_appends_a_record():
    makefile = (resnets_utils.KIT_DIR / "Makefile").read_text()
    for command in BENCHMARKS:
        recipe = re.search(rf"^{command.split()[1]}:.*\n((?:\t.*\n)+)", makefile, flags=re.M)
        assert recipe and "--record" in recipe[1], f"`{command}` does not pass --record to its tool"


def test_a_record_names_the_command_commit_cpu_date_and_figures(tmp_path):
    path = record("make bench-data", {"seconds": 12.5}, tmp_path / "records.jsonl")
    [saved] = load_records(path)
    assert saved["command"] == "make bench-data" and saved["figures"] == {"seconds": 12.5}
    assert re.fullmatch(r"[0-9a-f]{7,}(\+changes)?|unknown", saved["commit"])
    assert saved["cpu"]["kind"] in benchmarks.CPU_KINDS + ("without AVX2",) and saved["cpu"]["cores"] >= 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", saved["date"])


def test_a_record_refuses_a_figure_the_page_would_not_show(tmp_path):
    with pytest.raises(ValueError, match="make bench-data records no figure named minutes"):
        record("make bench-data", {"minutes": 1.0}, tmp_path / "records.jsonl")


def test_the_page_shows_the_newest_record_of_each_kind_of_cpu_beside_the_goal():
    records = [entry("make bench-data", "AVX2 only", "d1", seconds=40.0), entry("make bench-data", "AVX2 only", "d2", seconds=20.0),
               entry("make bench-data", "AMX", "d3", seconds=9.0)]
    assert latest(records)["make bench-data"]["AVX2 only"]["date"] == "d2"
    text = page(records)
    row = next(line for line in text.splitlines() if line.startswith("| generating the 1200 SIGNS images"))
    assert row == "| generating the 1200 SIGNS images | 20.0 s | 9.0 s | at most 30 s |"
    assert "| figure | AVX2 only CPU | AMX CPU | goal |" in text
    assert "No record of `make bench` yet" in text


def test_a_missed_goal_is_marked_and_an_unreached_accuracy_said_so():
    text = page([entry("make bench", "AVX2 only", "d", ratio=1.1, minutes_to_90=None)])
    assert "| 1.10x (missed) |" in text
    assert "| notebook 4's run: training time to 90% test accuracy | not reached (missed) |" in text


def test_a_damaged_records_file_is_named_with_its_line(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(entry("make bench-data", "AVX2 only", "d", seconds=1.0)) + "\n{not json\n")
    with pytest.raises(RecordsError, match=rf"{re.escape(str(path))}, line 2: not JSON"):
        load_records(path)
    path.write_text(json.dumps({"command": "make coffee", "cpu": {"kind": "AMX"}, "figures": {}}) + "\n")
    with pytest.raises(RecordsError, match="line 1: not a record of a benchmark command"):
        load_records(path)


def test_a_card_without_its_generated_block_is_named(tmp_path):
    card = tmp_path / "card.md"
    with pytest.raises(RecordsError, match=rf"{re.escape(str(card))}: no generated block 'data-card'"):
        benchmarks.fill_block("# A card\n", "data-card", "", card)


def test_a_benchmark_run_that_is_not_the_default_one_is_not_recorded(tmp_path):
    """A smaller run than the benchmark's own would put a misleading figure on the page."""
    records = tmp_path / "records.jsonl"
    run = subprocess.run([sys.executable, "-m", "tools.data.make_signs", "--out", str(tmp_path), "--train-per-class", "1",
                          "--test-per-class", "1", "--record"], cwd=resnets_utils.KIT_DIR, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", benchmarks.RECORDS_VARIABLE: str(records)})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Not recorded: the benchmark is the kit's own 1200 images" in run.stdout and not records.exists()


def test_make_bench_records_notebook_4s_own_run_only():
    from tools.model import bench_training
    from tools.course.notebook_source import notebook_constant

    epochs = notebook_constant("EPOCHS")
    assert bench_training.not_the_benchmark(None) is None and bench_training.not_the_benchmark(epochs) is None
    assert f"{epochs} epochs, not {epochs + 2}" in bench_training.not_the_benchmark(epochs + 2)


@pytest.mark.parametrize("cap", ["AVX2", "avx512_core"])
def test_a_run_with_onednn_held_to_fewer_instructions_is_not_recorded_under_this_cpu(tmp_path, monkeypatch, capsys, cap):
    """ONEDNN_MAX_CPU_ISA makes a fast CPU compute like an older one; its figures are neither CPU's."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert record("make bench-data", {"seconds": 12.5}, tmp_path / "records.jsonl") is None
    assert not (tmp_path / "records.jsonl").exists()
    assert f"Not recorded: ONEDNN_MAX_CPU_ISA={cap}" in capsys.readouterr().out
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "ALL")  # oneDNN's own word for no limit
    assert record("make bench-data", {"seconds": 12.5}, tmp_path / "records.jsonl") is not None


def test_the_ci_benchmark_times_every_target_ci_runs_and_records_nothing_when_one_fails(tmp_path, monkeypatch):
    from tools.course import bench_ci

    targets = bench_ci.ci_targets((resnets_utils.KIT_DIR / "Makefile").read_text())
    assert {bench_ci.figure_key(target) for target in targets} | {"total_minutes"} == {figure.key for figure in BENCHMARKS["make bench-ci"]}
    makefile = tmp_path / "Makefile"
    makefile.write_text("test-all: good bad\ngood:\n\ttrue\nbad:\n\tfalse\n")
    monkeypatch.setattr(bench_ci, "KIT_DIR", tmp_path)
    monkeypatch.setenv(benchmarks.RECORDS_VARIABLE, str(tmp_path / "records.jsonl"))
    monkeypatch.setattr(sys, "argv", ["bench_ci", "--record"])
    with pytest.raises(SystemExit, match="Failed: make bad; not recorded"):
        bench_ci.main()
    assert not (tmp_path / "records.jsonl").exists()
