"""`genforge run`: the main job end to end on a tiny pipeline; its HTML page checked against its JSON."""

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers import assert_one_line_error

from genforge.app.report import fmt
from genforge.benchmarks.rows import row_cells

TINY = """
[train]
model = "cgan"
image_size = 16
batch_size = 16
steps = 4
sample_every = 2
checkpoint_every = 2
[train.model_options]
g_width = 8
d_width = 8
latent_dim = 16
[evaluate]
n = 100
[export]
precisions = ["fp32", "int8"]
quality_samples = 100
max_fd_increase = 10.0
[bench]
batches = [1, 4]
duration_s = 0.05
warmup_s = 0.01
min_iters = 3
"""


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tables, self.verdict, self._cell, self._in_cell, self._in_verdict = {}, {}, [], None, False, 0
        self._table = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images[attrs["alt"]] = attrs["src"]
        elif tag == "table":
            self._table = attrs["id"]
            self.tables[self._table] = []
        elif tag in ("td", "th"):
            self._in_cell, self._cell = True, ""
        elif tag == "section" and attrs.get("id") == "verdict":
            self._in_verdict = 1
        elif tag == "li" and self._in_verdict:
            self.verdict.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[self._table].append(self._cell)
            self._in_cell = False
        elif tag == "section":
            self._in_verdict = 0

    def handle_data(self, data):
        if self._in_cell:
            self._cell += data
        elif self._in_verdict and self.verdict:
            self.verdict[-1] += data


def read_page(out) -> Page:
    page = Page()
    page.feed((out / "index.html").read_text())
    page.close()
    return page


def test_run_writes_a_report_whose_page_matches_its_json(tmp_path, genforge_cli):
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(TINY)
    out = tmp_path / "report"
    result = genforge_cli("run", pipeline, "--out", out)
    assert "index.html" in result.stdout and "best speed-up over PyTorch eager" in result.stdout
    report = json.loads((out / "report.json").read_text())
    page = read_page(out)
    assert set(page.images) == {"samples.png", "loss.png", "precisions.png", "speed.png"}
    for name, source in page.images.items():  # self-contained: every picture embedded, and kept beside it
        assert source.startswith("data:image/png;base64,") and len(source) > 1000 and (out / name).exists()
    assert page.verdict[0].startswith("cgan on digits, 4 steps")
    assert any(line.startswith("int8: PSNR") and "gate 1000%): passed" in line for line in page.verdict)
    quality, exports, bench = page.tables["quality-table"], page.tables["exports-table"], page.tables["bench-table"]
    for key, name in (("fd", "FD"), ("fd_floor", "FD floor"), ("kid", "KID"), ("cond_acc", "class accuracy")):
        assert name in quality and fmt(report["quality"][key]) in quality
    assert "neg_elbo" in quality and "skipped" in quality, "a metric skipped for a reason is shown with it"
    assert [e["precision"] for e in report["exports"]] == ["fp32", "int8"]
    for export in report["exports"]:
        assert fmt(export["psnr_db"]) in exports and (out / export["file"]).exists()
    assert "passed" in exports and "no gate" in exports
    ok_rows = [r for r in report["bench"] if r["status"] == "ok"]
    assert {(r["target"], r["backend"]) for r in ok_rows} == {
        ("PyTorch (the run)", "torch"), ("model-fp32.onnx", "ort-cpu"), ("model-int8.onnx", "ort-cpu")}
    assert "PyTorch (the run)" in bench, "the run's row says PyTorch, not the folder's name 'training'"
    for row in ok_rows:
        cells = row_cells(row)
        assert cells[3] in bench and cells[7] in bench
    assert report["environment"]["versions"]["genforge"] in page.tables["environment-table"]
    assert "load average (1, 5, 15 min)" in page.tables["environment-table"]
    assert "steps" in page.tables["training-table"] and "model_options" in page.tables["training-table"]
    bench_json = json.loads((out / "bench.json").read_text())
    assert all(len(r["samples_ms"]) >= 3 for r in bench_json["rows"] if r["status"] == "ok")
    markdown = (out / "report.md").read_text()
    assert markdown.startswith("## genforge report: cgan on digits") and "### Speed" in markdown
    assert all(line in markdown for line in ("FD floor", "class accuracy", "model-int8.onnx"))


def test_run_refuses_a_foreign_folder_and_bad_pipeline(tmp_path, genforge_cli):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    assert_one_line_error(genforge_cli("run", "--out", foreign, expect=2), "not a genforge report")
    assert (foreign / "thesis.tex").read_text() == "precious"
    bad = tmp_path / "bad.toml"
    bad.write_text("[trian]\nsteps = 3\n")
    assert_one_line_error(genforge_cli("run", bad, expect=2), "unknown pipeline section(s) trian")
    assert_one_line_error(genforge_cli("run", tmp_path / "missing.toml", expect=2), "does not exist")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.slow  # starts a browser
@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("GENFORGE_REQUIRE_BROWSER"),
                    reason="Chromium is not installed (.ci/run installs Debian's chromium; apt install chromium)")
def test_the_report_renders_in_a_real_browser(tmp_path, genforge_cli):
    """Headless Chromium renders the page: the verdict, every table and every picture (decoded, non-empty);
    a screenshot is kept in artifacts/ (or GENFORGE_ARTIFACTS)."""
    assert CHROMIUM, "GENFORGE_REQUIRE_BROWSER is set but no chromium is on PATH"
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(TINY)
    out = tmp_path / "report"
    genforge_cli("run", pipeline, "--out", out)
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    script = ("<script>window.onload=()=>{const imgs=[...document.images];document.title=JSON.stringify({"
              "images:imgs.map(i=>[i.alt,i.naturalWidth,i.naturalHeight]),"
              "tables:[...document.querySelectorAll('table')].map(t=>[t.id,t.rows.length]),"
              "verdict:document.querySelector('#verdict').innerText})}</script>")
    probe = tmp_path / "probe.html"
    probe.write_text((out / "index.html").read_text().replace("</body>", script + "</body>"))
    dom = subprocess.run([CHROMIUM, *HEADLESS, *profile, "--virtual-time-budget=5000", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    title = dom.stdout.split("<title>", 1)[1].split("</title>", 1)[0]
    import html as html_module

    rendered = json.loads(html_module.unescape(title))
    assert {name for name, width, height in rendered["images"] if width > 100 and height > 100} == {
        "samples.png", "loss.png", "precisions.png", "speed.png"}
    tables = dict(rendered["tables"])
    assert set(tables) == {"quality-table", "exports-table", "bench-table", "training-table", "environment-table",
                           "timings-table"} and all(rows > 1 for rows in tables.values())
    assert "best speed-up over PyTorch eager" in rendered["verdict"] and "int8: PSNR" in rendered["verdict"]
    artifacts = Path(os.environ.get("GENFORGE_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "report-screenshot.png"
    subprocess.run([CHROMIUM, *HEADLESS, *profile, "--window-size=1200,3200", f"--screenshot={shot}",
                    (out / "index.html").as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 50_000


def test_a_pipeline_with_a_store_records_its_timings_and_shows_their_history(tmp_path, genforge_cli):
    pipeline = tmp_path / "pipeline.toml"
    store = tmp_path / "history.sqlite"
    pipeline.write_text(TINY.replace('precisions = ["fp32", "int8"]', 'precisions = ["fp32"]') +
                        f'store = "{store}"\ncommit = "c0ffee1"\nbranch = "main"\n')
    out = tmp_path / "report"
    genforge_cli("run", pipeline, "--out", out)
    report = json.loads((out / "report.json").read_text())
    timed = [r for r in report["bench"] if r["status"] == "ok"]
    assert report["history"]["commit"] == "c0ffee1" and len(report["history"]["series"]) == len(timed)
    page = read_page(out)
    plots = {s["plot"] for s in report["history"]["series"]}
    assert plots <= set(page.images) and not any((out / name).exists() for name in plots)
    assert "### Speed history" in (out / "report.md").read_text()
    from genforge.benchmarks.store import open_store

    with open_store(store) as opened:
        assert [r.commit for r in opened.records()] == ["c0ffee1"]
    genforge_cli("run", pipeline, "--out", out, "--overwrite")  # the folder is still one genforge may replace
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY + 'commit = "abc"\n')
    assert_one_line_error(genforge_cli("run", bad, "--out", tmp_path / "r2", expect=2), "store")


def test_a_restoration_model_runs_the_whole_pipeline_judged_by_its_own_metric(tmp_path, genforge_cli):
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(TINY.replace('model = "cgan"', 'model = "inpaint"').replace(
        "g_width = 8\nd_width = 8\nlatent_dim = 16\n", "width = 8\n"))
    out = tmp_path / "report"
    genforge_cli("run", pipeline, "--out", out)
    report = json.loads((out / "report.json").read_text())
    assert {"psnr_masked", "psnr_masked_input", "ssim"} <= set(report["quality"])
    int8 = next(e for e in report["exports"] if e["precision"] == "int8")
    assert int8["gate"].startswith("psnr_masked") and int8["gate_passed"] is True
    page = read_page(out)
    assert any(line.startswith("int8: PSNR") and "psnr_masked" in line and line.endswith("passed")
               for line in page.verdict), page.verdict
    assert "precisions.png" in page.images
