"""The leaderboard site and plots: joined accuracy, escaping, the Pareto frontier, and a real browser."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.publish import leaderboard, plots, site
from tests import colour_model as cm
from tests.browser import open_page
from tests.helpers import bench
from tests.synthetic import record, with_relative

EVIL = '<script>window.pwned = 1</script>'
PLUGIN = {"ONEBENCH_PLUGINS": "tests.colour_model"}


def test_pareto_keeps_points_no_other_beats_on_both_axes() -> None:
    pts = [plots.Point(n, lat, top1, True, False) for n, lat, top1 in
           [("a", 1.0, 70.0), ("b", 2.0, 69.0), ("c", 2.5, 75.0), ("d", 3.0, 74.0), ("e", 4.0, 79.0), ("f", 1.0, 65.0)]]
    assert [p.model for p in plots.pareto(pts)] == ["a", "c", "e"]


def test_reported_top1_is_labelled_and_names_are_escaped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    recs = [record([rng.normal(5e6, 1e4, 50)], model="mobileone_s0", run_id="r1"),
            record([rng.normal(3e6, 1e4, 50)], model=EVIL, run_id="r1")]
    recs[1]["message"] = '<img src=x onerror="window.pwned=2">'
    header, body = leaderboard.as_lists(recs)
    assert header[3] == "top-1" and body[1][3] == "71.4 (reported)" and body[0][3] == "—"
    page = site.write_site(recs, [], tmp_path / "site").read_text()
    assert EVIL not in page and "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page and "onerror=" not in page
    assert (tmp_path / "site" / "plots" / "accuracy-latency-torch.svg").exists()


def test_site_refuses_to_replace_a_folder_it_did_not_build(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(HarnessError, match="is not an onebench site"):
        site.write_site([record([np.full(20, 1e6)])], [], tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_a_rebuilt_site_keeps_the_users_own_files_and_drops_its_old_ones(tmp_path: Path) -> None:
    """#49: a second `--html SITE` deleted the files a user had added to SITE without a word."""
    folder = tmp_path / "site"
    site.write_site([record([np.full(20, 1e6)], model="a"), record([np.full(20, 2e6)], model="b")], [], folder)
    (folder / "notes.md").write_text("mine")
    (folder / "assets").mkdir()
    (folder / "assets" / "logo.svg").write_text("<svg/>")
    old_b = next(p for p in (folder / "records").rglob("*.json") if p.name.startswith("b-"))
    site.write_site([record([np.full(20, 1e6)], model="a")], [], folder)
    assert (folder / "notes.md").read_text() == "mine" and (folder / "assets" / "logo.svg").read_text() == "<svg/>"
    assert not old_b.exists()  # onebench's own file of the first build is gone with it


def test_a_users_file_where_a_rebuild_writes_is_refused_not_replaced(tmp_path: Path) -> None:
    from harness.store.records import replacing_folder

    folder = tmp_path / "bundle"
    with replacing_folder(folder, "MARK", "a test folder", "--out") as staging:
        (staging / "MARK").write_text("")
    (folder / "report.txt").write_text("mine")
    with pytest.raises(HarnessError, match="report.txt is not onebench's"):
        with replacing_folder(folder, "MARK", "a test folder", "--out") as staging:
            (staging / "MARK").write_text("")
            (staging / "report.txt").write_text("onebench's")
    assert (folder / "report.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A results folder as a user makes it: two runs, one accuracy record, and a hostile record."""
    root = tmp_path_factory.mktemp("user")
    data, _, _ = cm.make_imagefolder(root / "data", per_class=2, wrong={"c0_red": "c3_cyan"})
    weights = cm.save_weights(root / "w.pth")
    steps = [
        ("run", "--preset", "quick", "-m", cm.NAME, "-b", "onnxruntime", "-b", "torch", "--threads", "1", "--weights", str(weights),
         "--out", "results/runs/colours"),
        ("run", "--preset", "quick", "-m", "timm:test_byobnet", "-b", "onnxruntime", "-b", "torch", "--threads", "1",
         "--out", "results/runs/byob"),
        ("accuracy", "-m", cm.NAME, "-b", "onnxruntime", "--weights", str(weights), "--data", str(data), "--threads", "1"),
    ]
    for args in steps:
        done = bench(*args, cwd=root, env=PLUGIN)
        assert done.returncode == 0, done.stderr[-2000:]
    evil = record([np.random.default_rng(1).normal(2e6, 1e4, 50)], model=EVIL, backend="onnxruntime", run_id="evil")
    evil["job"]["threads"] = 1
    evil["host"] = json.loads(next((root / "results/runs/colours/records").glob("*.json")).read_text())["host"]  # same machine
    (root / "results/runs/evil/records").mkdir(parents=True)
    (root / "results/runs/evil/records/evil.json").write_text(json.dumps(evil))
    return root


@pytest.mark.slow
def test_measured_top1_joins_the_timed_artifact_in_every_format(results: Path) -> None:
    done = bench("leaderboard", "colours", "byob", "--format", "md", "--output", "board/README.md", cwd=results, env=PLUGIN)
    assert done.returncode == 0, done.stderr[-2000:]
    text = (results / "board/README.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| {cm.NAME} "))
    assert "| 91.7 |" in row  # 11 of 12 images: measured, so not marked (reported)
    assert "![top-1 vs p50 latency, onnxruntime](plots/accuracy-latency-onnxruntime.png)" in text
    assert (results / "board/plots/accuracy-latency-onnxruntime.svg").stat().st_size > 1000
    csv = bench("leaderboard", "colours", "--format", "csv", cwd=results, env=PLUGIN).stdout.splitlines()
    ort = next(line for line in csv if ",onnxruntime," in line)
    assert ",91.667,50.000," in ort  # measured on the artifact beside the (made-up) reported figure


@pytest.mark.slow
def test_site_in_headless_chromium(results: Path, tmp_path: Path) -> None:
    done = bench("leaderboard", "colours", "byob", "evil", "--html", "site", cwd=results, env=PLUGIN)
    assert done.returncode == 0, done.stderr[-2000:]
    index = results / "site" / "index.html"
    records = [json.loads(p.read_text()) for p in (results / "results/runs").glob("*/records/*.json")]
    with open_page(index) as visit:
        page = visit.page
        names = lambda: [td.inner_text() for td in page.query_selector_all("#leaderboard tbody td.model")]  # noqa: E731
        assert sorted(names()) == sorted({r["job"]["model"] for r in records})  # one row per model, hostile one as text
        assert page.evaluate("window.pwned") is None
        page.click("#leaderboard th:nth-child(1)")
        assert names() == sorted(names())
        page.click("#leaderboard th:nth-child(1)")
        assert names() == sorted(names(), reverse=True)
        headers = [th.inner_text() for th in page.query_selector_all("#leaderboard th")]
        ort = next(i for i, h in enumerate(headers) if h.startswith("onnxruntime")) + 1
        page.click(f"#leaderboard th:nth-child({ort})")
        p50 = [float(td.get_attribute("data-sort")) for td in page.query_selector_all(f"#leaderboard tbody td:nth-child({ort})")]
        assert p50 == sorted(p50) and len(p50) == 3
        page.click(f"#leaderboard th:nth-child({ort})")
        assert [float(td.get_attribute("data-sort")) for td in page.query_selector_all(f"#leaderboard tbody td:nth-child({ort})")] \
            == sorted(p50, reverse=True)
        sizes = page.query_selector_all("table.board")[-1]  # the size-and-memory table sorts within itself
        assert sizes.query_selector("th").inner_text() == "model" and "held MB" in sizes.inner_text()
        sizes.query_selector("th:nth-child(2)").click()
        backends = [td.inner_text() for td in sizes.query_selector_all("tbody td:nth-child(2)")]
        assert len(backends) > 1 and backends == sorted(backends)
        images = page.query_selector_all("figure img")
        assert images and all(page.evaluate("(img) => img.naturalWidth > 0", img) for img in images)
        link = page.query_selector("a[href^='records/colours/']").get_attribute("href")
        assert json.loads((index.parent / link).read_text())["job"]["model"] == cm.NAME
        shot = tmp_path / "leaderboard.png"
        page.screenshot(path=str(shot), full_page=True)
    assert visit.console_errors == []
    site_root = index.parent.resolve().as_uri()
    assert visit.requests and all(url.startswith(site_root) for url in visit.requests), visit.requests
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_figure_is_named_a_meaningless_ci_is_never_printed_and_csv_keeps_p50_ms() -> None:
    rng = np.random.default_rng(3)
    tight = record([rng.normal(5e6, 1e4, 60) for _ in range(3)], model="mobileone_s0")
    wild = record([rng.normal(5e6, 1e4, 60), rng.normal(30e6, 1e4, 60)], model="mobileone_s1")
    wild["stats"].update(ci_low=1e6, ci_high=40e6)  # as a sweep beside a busy neighbour printed: ±390%
    header, body = leaderboard.as_lists([tight, wild])
    cells = {row[0]: row[4] for row in body}
    assert cells["mobileone_s1"].endswith("±?") and "390" not in cells["mobileone_s1"]
    assert "±" in cells["mobileone_s0"] and "?" not in cells["mobileone_s0"]
    assert "quiet-window p50" in leaderboard.to_markdown([tight])
    rows = list(__import__("csv").DictReader(leaderboard.to_csv([tight]).splitlines()))
    assert float(rows[0]["p50_ms"]) == pytest.approx(tight["stats"]["p50"] / 1e6, abs=1e-4)
    assert cells["mobileone_s0"].startswith(rows[0]["p50_ms"][:4])  # the column holds the number the table shows
    assert float(rows[0]["p50_all_iterations_ms"]) > 0 and 0 <= float(rows[0]["windows_set_aside"]) <= 1
    tight["stats"].update(gflops=55.0, peak_share=0.83)
    rows = list(__import__("csv").DictReader(leaderboard.to_csv([tight]).splitlines()))
    assert (rows[0]["gflops"], rows[0]["peak_share"]) == ("55.0", "0.83")


def test_a_relative_table_shows_relative_figures_and_names_its_reference(tmp_path: Path, monkeypatch) -> None:
    """`--relative`: each cell is the job's time over its pinned reference's, the caption names the reference
    and its own p50; a record without one shows a dash; milliseconds stay the default and the csv has both."""
    from typer.testing import CliRunner

    from harness.cli import app
    from harness.store.records import write_record

    rng = np.random.default_rng(4)
    fast = with_relative(record([rng.normal(5e6, 1e4, 60) for _ in range(3)], model="mobileone_s0"), 1.25, reference_ms=4.0)
    slow = record([rng.normal(9e6, 1e4, 60) for _ in range(3)], model="mobileone_s1")
    header, body = leaderboard.as_lists([fast, slow], figure="relative")
    cells = {row[0]: row[4] for row in body}
    assert cells["mobileone_s0"].startswith("1.250x ±0.5%") and cells["mobileone_s1"] == "—"
    assert leaderboard.as_lists([fast, slow])[1][0][4].startswith("5.00")  # milliseconds by default
    md = leaderboard.to_markdown([fast, slow], figure="relative")
    assert "conv-dense (torch 2.14.1), its own p50 4.00 ms" in md and "1.250x" in md
    rows = {r["model"]: r for r in __import__("csv").DictReader(leaderboard.to_csv([fast, slow]).splitlines())}
    assert rows["mobileone_s0"]["relative"] == "1.2500" and rows["mobileone_s0"]["reference"] == "conv-dense (torch 2.14.1)"
    assert rows["mobileone_s1"]["relative"] == ""
    run = tmp_path / "results" / "runs" / "r1"
    for rec in (fast, slow):
        write_record(run / "records" / f"{rec['job_id']}.json", rec)
    monkeypatch.chdir(tmp_path)
    shown = CliRunner().invoke(app, ["leaderboard", str(run), "--relative", "--format", "md"])
    assert shown.exit_code == 0, shown.output
    assert "1.250x" in shown.stdout and "relative = the job's quiet-window p50 / its pinned reference's" in shown.stdout
    written = CliRunner().invoke(app, ["leaderboard", str(run), "--relative", "--format", "md", "--output", "board/README.md"])
    assert written.exit_code == 0, written.output
    assert "1.250x" in (tmp_path / "board" / "README.md").read_text()


def test_cuda_boundaries_and_layouts_are_columns_of_their_own() -> None:
    recs = []
    for i, (boundary, layout) in enumerate([("device", "nchw"), ("end-to-end", "nchw"), ("device", "nhwc"),
                                            ("end-to-end", "nhwc")]):
        rec = record([np.full(60, (i + 1) * 1e6)], model="mobileone_s0")
        rec["job"].update(device="cuda", precision="fp16", boundary=boundary, layout=layout)
        recs.append(rec)
    header, body = leaderboard.as_lists(recs)
    assert header[4:] == ["torch device nchw", "torch device nhwc", "torch end-to-end nchw", "torch end-to-end nhwc"]
    assert [cell.split()[0] for cell in body[0][4:]] == ["1.00", "3.00", "2.00", "4.00"]  # none overwritten
    header, _ = leaderboard.as_lists(recs[:2])
    assert header[4:] == ["torch device", "torch end-to-end"]  # a field that does not vary is not repeated
