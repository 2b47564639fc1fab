"""The worked CI examples of docs/ci.md run as written: every command but the install line, in a shell, as a
push to main and then as a pull request (merge request), sharing the store as the cache would. The build
commands (train, export), the same in both, run once and their result is copied."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # runs the CI examples' commands as a push and a pull request

DOC = Path(__file__).parents[2] / "docs" / "ci.md"


def example(name: str) -> dict:
    text = DOC.read_text()
    match = re.search(rf"<!-- ci-example: {name} -->\n```yaml\n(.*?)```", text, re.S)
    assert match, f"docs/ci.md has no {name} example"
    return yaml.safe_load(match.group(1))


def run_script(script: str, cwd: Path, env: dict, allowed=(0,)) -> subprocess.CompletedProcess:
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode in allowed, f"{script}\nexit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


def installs_genforge(command: str) -> bool:
    return command.startswith("pip install") and "genforge[" in command


def builds_the_generator(command: str) -> bool:
    return all(line.strip().startswith(("genforge train", "genforge export")) for line in command.strip().splitlines())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Both examples build the generator with the same commands: run them once, here, and copy the result."""
    github = [s["run"] for s in example("github")["jobs"]["bench"]["steps"] if builds_the_generator(s.get("run", "-"))]
    gitlab = [c for c in example("gitlab")["genforge-bench"]["script"] if builds_the_generator(c)]
    assert len(github) == 1 and github[0].strip().splitlines() == [c.strip() for c in gitlab]
    folder = tmp_path_factory.mktemp("build")
    run_script(github[0], folder, {})
    return folder


def copy_build(built: Path, work: Path) -> None:
    subprocess.run(["cp", "-r", str(built / "run"), str(built / "model.onnx"), str(work)], check=True)


GITHUB_CONDITIONS = {
    "github.event_name == 'pull_request'": lambda event: event["name"] == "pull_request",
    "github.ref == 'refs/heads/main'": lambda event: event["ref"] == "refs/heads/main",
    "always()": lambda event: True,
}


def test_the_github_actions_workflow_runs_as_written(tmp_path, built):
    steps = example("github")["jobs"]["bench"]["steps"]
    cache = tmp_path / "cache"  # what actions/cache keeps between runs
    events = [{"name": "push", "ref": "refs/heads/main", "sha": "a" * 40, "branch": "main"},
              {"name": "pull_request", "ref": "refs/pull/7/merge", "sha": "b" * 40, "branch": "feature"}]
    for event in events:
        work = tmp_path / event["sha"][:6]
        work.mkdir()
        summary = work / "step-summary.md"
        env = {"GITHUB_SHA": event["sha"], "GITHUB_REF": event["ref"], "GITHUB_EVENT_NAME": event["name"],
               "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_REF_NAME": event["branch"],
               "GITHUB_HEAD_REF": event["branch"] if event["name"] == "pull_request" else ""}
        for step in steps:
            condition = step.get("if")
            if condition is not None and not GITHUB_CONDITIONS[condition](event):
                continue
            uses = step.get("uses", "")
            if uses.startswith("actions/cache/restore") and cache.exists():
                subprocess.run(["cp", "-r", str(cache), str(work / ".bench")], check=True)
            elif uses.startswith("actions/cache/save"):
                subprocess.run(["rm", "-rf", str(cache)], check=True)
                subprocess.run(["cp", "-r", str(work / ".bench"), str(cache)], check=True)
            if "run" not in step:
                continue
            if installs_genforge(step["run"].strip()):
                continue
            if builds_the_generator(step["run"]):
                copy_build(built, work)
                continue
            # the compare step exits 1 on a (confirmed) regression, by design; identical builds rarely do
            run_script(step["run"], work, env, allowed=(0, 1) if "compare" in step["run"] else (0,))
        assert (work / "bench-plots" / "index.html").exists()
        text = summary.read_text()
        assert "genforge benchmark history" in text
        if event["name"] == "pull_request":
            assert "genforge bench compare" in text and "reruns" in (work / "compare.md").read_text() or \
                "0 slower" in text
    assert (cache / "history.sqlite").exists() and (cache / "main.json").exists()


def test_the_gitlab_ci_job_runs_as_written(tmp_path, built):
    job = example("gitlab")["genforge-bench"]
    assert job["cache"]["paths"] == [".bench/"]
    cache = tmp_path / "cache"
    for sha, branch in (("c" * 40, "main"), ("d" * 40, "feature")):
        work = tmp_path / sha[:6]
        work.mkdir()
        copy_build(built, work)
        if cache.exists():
            subprocess.run(["cp", "-r", str(cache), str(work / ".bench")], check=True)
        env = {"CI_COMMIT_SHA": sha, "CI_COMMIT_REF_NAME": branch, "CI_DEFAULT_BRANCH": "main",
               "CI_COMMIT_BRANCH": branch if branch == "main" else "", "GITHUB_SHA": "", "GITHUB_REF_NAME": "",
               "GITHUB_HEAD_REF": ""}
        for command in job["script"]:
            if installs_genforge(command.strip()) or builds_the_generator(command):
                continue
            run_script(command, work, env, allowed=(0, 1) if "compare" in command else (0,))
        if branch == "main":  # policy pull-push on the default branch
            subprocess.run(["cp", "-r", str(work / ".bench"), str(cache)], check=True)
        else:
            assert (work / "compare.md").exists()
        assert (work / "history.md").exists() and list((work / "bench-plots").glob("history-*.png"))
