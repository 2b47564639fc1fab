"""`genforge run`: the main job end to end on a tiny pipeline; its HTML page checked against its JSON."""

import json
from html.parser import HTMLParser

from genforge.benchmarks.rows import row_cells
from genforge.core.app.report import fmt
from genforge.testing import assert_one_line_error

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
        self.images, self.tables, self._cell, self._in_cell = [], [], None, False

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag == "table":
            self.tables.append([])
        elif tag in ("td", "th"):
            self._in_cell, self._cell = True, ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1].append(self._cell)
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self._cell += data


def test_run_writes_a_report_whose_page_matches_its_json(tmp_path, genforge_cli):
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(TINY)
    out = tmp_path / "report"
    result = genforge_cli("run", pipeline, "--out", out)
    assert "index.html" in result.stdout
    report = json.loads((out / "report.json").read_text())
    page = Page()
    page.feed((out / "index.html").read_text())
    page.close()
    assert set(page.images) == {"samples.png", "loss.png"} and all((out / i).exists() for i in page.images)
    quality, exports, bench = page.tables[0], page.tables[1], page.tables[2]
    for key in ("fd", "fd_floor", "kid", "cond_acc"):
        assert key in quality and fmt(report["quality"][key]) in quality
    assert [e["precision"] for e in report["exports"]] == ["fp32", "int8"]
    for export in report["exports"]:
        assert fmt(export["psnr_db"]) in exports and (out / export["file"]).exists()
    ok_rows = [r for r in report["bench"] if r["status"] == "ok"]
    assert {(r["target"], r["backend"]) for r in ok_rows} == {
        ("run", "torch"), ("model-fp32.onnx", "ort-cpu"), ("model-int8.onnx", "ort-cpu")}
    for row in ok_rows:
        cells = row_cells(row)
        assert cells[3] in bench and cells[7] in bench
    assert report["environment"]["versions"]["genforge"] in page.tables[3]
    bench_json = json.loads((out / "bench.json").read_text())
    assert all(len(r["samples_ms"]) >= 3 for r in bench_json["rows"] if r["status"] == "ok")


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
