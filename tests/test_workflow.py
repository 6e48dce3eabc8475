"""The Snakemake workflow end to end on a tiny demo study."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

import fer.plots
from conftest import PROJECT_ROOT

TINY_STUDY = {
    "data": "demo",
    "demo_size": 350,
    "architectures": ["cnn1", "cnn3"],
    "augmentation": ["none", "homework"],
    "early_stopping": ["off", "on"],
    "seeds": [7],
    "epochs": 2,
    "channel_num": 4,
    "batch_size": 32,
    "patience": 1,
}
FIGURES = ("early_stopping", "augmentation", "confusion_matrix", "class_distribution", "overview")


def make_workdir(root: Path, study: dict) -> Path:
    """Copy the workflow and scripts into ``root`` and write its config, so tests may edit them."""
    shutil.copytree(PROJECT_ROOT / "workflow", root / "workflow")
    shutil.copytree(PROJECT_ROOT / "scripts", root / "scripts")
    (root / "config").mkdir()
    base = yaml.safe_load((PROJECT_ROOT / "config" / "config.yaml").read_text())
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(base | study))
    return root


def snakemake(workdir: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    command = ["snakemake", "--cores", "2", "--resources", "gpu=1", *args]
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=1200)


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Parse the job-count table of a dry run."""
    counts = {}
    for line in result.stdout.splitlines():
        match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def test_default_config_plans_twenty_training_jobs(tmp_path, cli_env):
    workdir = make_workdir(tmp_path, {"data": "demo"})
    result = snakemake(workdir, cli_env, "-n")
    assert result.returncode == 0, result.stderr
    assert planned_jobs(result)["train"] == 20


@pytest.mark.parametrize(
    ("cores", "gpus", "threads"),
    [("8", "1", 8), ("8", "4", 2), ("3", "4", 1)],
)
def test_training_threads_share_cores(tmp_path, cli_env, cores, gpus, threads):
    workdir = make_workdir(tmp_path, {"data": "demo"})
    command = ["snakemake", "-n", "--cores", cores, "--resources", f"gpu={gpus}"]
    result = subprocess.run(command, cwd=workdir, env=cli_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr

    # Snakemake prints a job's threads only when there are more than one.
    train_jobs = [block for block in result.stdout.split("\nrule ") if block.startswith("train:")]
    assert len(train_jobs) == 20
    has_threads_line = {f"threads: {threads}" in block for block in train_jobs}
    assert has_threads_line == {threads > 1}


def test_config_seed_list_from_command_line(tmp_path, cli_env):
    # This is the README's example. Snakemake passes the list items as strings.
    workdir = make_workdir(tmp_path, {"data": "demo"})
    result = snakemake(workdir, cli_env, "-n", "--config", "epochs=3", "seeds=[1,2,3]")
    assert result.returncode == 0, result.stdout + result.stderr
    assert planned_jobs(result)["train"] == 60
    assert "results/runs/cnn1/none/off/seed-3/metrics.json" in result.stdout


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("epochs=-1", "config key 'epochs' = -1 is invalid"),
        ("optimizer=adamw", "'optimizer' = 'adamw' is not allowed"),
        ("seeds=[1,x]", "config key 'seeds.1' = 'x' is invalid"),
        ("data=/no/such/folder", "/no/such/folder"),
    ],
)
def test_bad_config_gives_one_clear_error(tmp_path, cli_env, override, expected):
    workdir = make_workdir(tmp_path, {"data": "demo"})
    result = snakemake(workdir, cli_env, "-n", "--config", override)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert expected in output
    assert "Traceback" not in output


@pytest.mark.slow
def test_tiny_study_runs_and_reruns_only_what_changed(tmp_path, cli_env):
    workdir = make_workdir(tmp_path, TINY_STUDY)
    result = snakemake(workdir, cli_env)
    assert result.returncode == 0, result.stderr[-4000:]
    results = workdir / "results"

    table = pd.read_csv(results / "tables" / "ablation.csv")
    assert len(table) == 8
    assert set(table["arch"]) == {"cnn1", "cnn3"}
    assert table["test_accuracy"].between(0, 1).all()
    for name in FIGURES:
        assert (results / "figures" / f"{name}.png").stat().st_size > 1000, name
    for run_dir in table["run_dir"]:
        for name in ("metrics.json", "history.csv", "model.pt", "predictions.csv"):
            assert (workdir / run_dir / name).is_file()

    # A training job gets every core given with --cores (2 here).
    metrics = json.loads((workdir / table["run_dir"].iloc[0] / "metrics.json").read_text())
    assert metrics["cpu_threads"] == 2
    submission = pd.read_csv(results / "submission.csv")
    assert list(submission.columns) == ["id", "label"]
    assert submission["label"].between(0, 6).all()
    for log in ("prepare", "table", "figures", "submission", "report"):
        assert (results / "logs" / f"{log}.log").is_file(), log
    assert len(list((results / "logs" / "train").rglob("*.log"))) == 8

    report = (results / "report.html").read_text()
    for heading in ("Objective", "Data", "Models", "Techniques", "Results", "Early stopping", "Data augmentation", "Confusion matrix", "Data distribution"):
        assert heading in report, heading
    assert report.count("data:image/png;base64,") >= len(FIGURES)
    assert "synthetic" in report.lower()

    # Nothing changed: nothing to do.
    assert "Nothing to be done" in snakemake(workdir, cli_env, "-n").stdout

    # Forcing one cell's output reruns that cell and what depends on it.
    jobs = planned_jobs(snakemake(workdir, cli_env, "-n", "--forcerun", "results/runs/cnn3/homework/on/seed-7/metrics.json"))
    assert jobs["train"] == 1
    assert jobs.get("report") == 1

    # Editing plotting code reruns figures and report, never a training job.
    figures_script = workdir / "scripts" / "figures.py"
    figures_script.write_text(figures_script.read_text() + "\n# edited\n")
    jobs = planned_jobs(snakemake(workdir, cli_env, "-n"))
    assert "train" not in jobs
    assert jobs.get("figures") == 1
    figures_script.write_text(figures_script.read_text().replace("\n# edited\n", ""))

    # Editing the plotting module of the fer package reruns the figures and
    # the report, never a training job. The test changes only the file's
    # modification time and restores it afterwards.
    plots_module = Path(fer.plots.__file__)
    stat = plots_module.stat()
    os.utime(plots_module, (stat.st_atime, time.time()))
    try:
        jobs = planned_jobs(snakemake(workdir, cli_env, "-n"))
    finally:
        os.utime(plots_module, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert "train" not in jobs
    assert jobs.get("figures") == 1
    assert jobs.get("report") == 1

    # Changing one architecture's settings reruns only its cells.
    study = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    study["arch_settings"] = {"cnn3": {"lr": 0.05}}
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(study))
    dry_run = snakemake(workdir, cli_env, "-n")
    assert planned_jobs(dry_run)["train"] == 4
    assert "results/runs/cnn1/" not in dry_run.stdout.split("Job stats")[0].replace("input: ", "")


@pytest.mark.slow
def test_course_layout_gives_submission_and_no_test_score(tmp_path, cli_env):
    from datagen import write_course

    course = write_course(tmp_path / "course", train_per_class=10, test_count=15)
    study = TINY_STUDY | {"data": str(tmp_path / "course"), "architectures": ["cnn3"], "augmentation": ["none"], "early_stopping": ["off", "on"]}
    workdir = make_workdir(tmp_path / "work", study)
    result = snakemake(workdir, cli_env)
    assert result.returncode == 0, result.stderr[-4000:]

    submission = pd.read_csv(workdir / "results" / "submission.csv")
    assert list(submission.columns) == ["id", "label"]
    assert set(submission["id"].astype(str)) == {str(identifier) for identifier in course.test_ids}
    assert submission["label"].between(0, 6).all()
    table = pd.read_csv(workdir / "results" / "tables" / "ablation.csv")
    assert table["test_accuracy"].isna().all()
    report = (workdir / "results" / "report.html").read_text()
    assert "no test score" in report.lower() or "unlabeled" in report.lower()
    assert "submission.csv" in report


@pytest.mark.slow
def test_killed_study_recovers_with_unlock_and_rerun(tmp_path, cli_env):
    import os
    import signal
    import time

    study = TINY_STUDY | {"architectures": ["cnn3"], "augmentation": ["none"], "early_stopping": ["off"], "seeds": [1, 2], "epochs": 30, "demo_size": 700}
    workdir = make_workdir(tmp_path, study)
    command = ["snakemake", "--cores", "1", "--resources", "gpu=1"]
    process = subprocess.Popen(command, cwd=workdir, env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    resume_files = workdir / "results" / "runs"
    deadline = time.monotonic() + 600
    while not list(resume_files.rglob("resume.pt")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert list(resume_files.rglob("resume.pt")), "no training job was running when the study was killed"

    assert snakemake(workdir, cli_env, "--unlock").returncode == 0
    rerun = snakemake(workdir, cli_env)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert (workdir / "results" / "report.html").is_file()
    logs = "".join(path.read_text() for path in (workdir / "results" / "logs" / "train").rglob("*.log"))
    assert "resuming after epoch" in logs
