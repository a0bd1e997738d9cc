"""The accuracy-vs-latency plot: names never overlap, the latency axis starts at zero, CIs are drawn."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from harness.publish.plots import Point, draw, place_labels  # noqa: E402

# the newcomer's case: mobileformer_508m's name was hidden under mobileone_s4's
CROWDED = [Point("mobileone_s4", 60.0, 79.4, False, True, True, (58.0, 63.0)),
           Point("mobileformer_508m", 61.0, 79.3, False, False, False, (60.0, 62.5)),
           Point("mobileone_s3", 59.0, 79.2, False, True),
           Point("efficientnet_b0", 14.2, 77.1, True, False)]


def test_names_are_placed_without_overlap() -> None:
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    ax.scatter([p.latency_ms for p in CROWDED], [p.top1 for p in CROWDED])
    place_labels(ax, CROWDED, lambda p: "k")
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert sorted(t.get_text() for t in ax.texts) == sorted(["mobileone_s4~", "mobileformer_508m", "mobileone_s3",
                                                             "efficientnet_b0"])
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(fig)


def test_the_plot_files_and_axis(tmp_path: Path, monkeypatch) -> None:
    seen = {}
    real_close = plt.close

    def keep(fig) -> None:
        seen["ax"] = fig.axes[0]
        real_close(fig)

    monkeypatch.setattr(plt, "close", keep)
    png, svg = draw(CROWDED, "top-1 vs latency · onnxruntime · AMD EPYC 7B13", tmp_path / "plot")
    assert png.stat().st_size > 10_000 and svg.read_text().startswith("<?xml")
    ax = seen["ax"]
    assert ax.get_xlim()[0] == 0 and ax.get_xscale() == "linear"
    assert len(ax.collections) >= 4 + 2  # four points, two CI bars
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "top-1 reported (paper), not measured" in labels and "top-1 measured on this artifact" in labels
    wide = [Point("a", 0.5, 70.0, True, False), Point("b", 50.0, 80.0, True, False)]
    draw(wide, "t", tmp_path / "wide")
    assert seen["ax"].get_xscale() == "log"
