"""The HTML evaluation report: self-contained, escaped, atomic, and rendered by a real browser."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segue.exceptions import ParameterError
from segue.metrics.buckets import bucket_table
from segue.metrics.report import Report, render_report, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUNS = ("userknn", "two-stage <b>")  # a run name with markup: must come out escaped


def small_report() -> Report:
    """Two runs over 60 playlists in three categories, with per-category tables."""
    rng = np.random.default_rng(0)
    categories = pd.Categorical(np.repeat(["1: title only", "2: one track", "3: five"], 20))
    per_run = {}
    for shift, run in zip((0.0, 0.1), RUNS, strict=True):
        per_run[run] = pd.DataFrame(
            {
                "category": categories,
                "ndcg": rng.uniform(0.1, 0.5, 60) + shift,
                "clicks": rng.uniform(0.0, 3.0, 60) - 5 * shift,
            }
        )
    metrics = ["ndcg", "clicks"]
    return Report(
        title="test report",
        summary={
            run: {**{m: float(f[m].mean()) for m in metrics}, "playlists": 60.0}
            for run, f in per_run.items()
        },
        buckets={
            "category": {run: bucket_table(f, "category", metrics) for run, f in per_run.items()}
        },
        bucket_metrics=metrics,
        ranked=metrics,
        data={"task": "MPD challenge", "challenge playlists": 60},
        models={"userknn": {"class": "UserKNN", "parameters": '{"neighbors": 100}'}},
        command="segue evaluate a.csv b.csv --answers val/answers.json --report r.html",
    )


def test_report_holds_tables_embedded_plots_and_nothing_remote() -> None:
    html = render_report(small_report())
    assert html.startswith("<!DOCTYPE html>")
    # overall + one table per metric by category + models
    assert html.count("<table") == 1 + 2 + 1
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 1 and base64.b64decode(images[0])[:8] == PNG_MAGIC
    # nothing fetched from anywhere: no external src/href, no script
    assert not re.search(r'(src|href)="(?!data:)', html) and "<script" not in html
    assert "two-stage &lt;b&gt;" in html and "two-stage <b>" not in html
    assert "segue evaluate a.csv b.csv" in html and "challenge playlists" in html
    # the better run is marked per metric: higher ndcg, lower clicks (both are the second run)
    overall = html[
        html.index('class="overall"') : html.index("</table>", html.index('class="overall"'))
    ]
    best_rows = re.findall(
        r"<td>(\w+)(?: &darr;)?</td>\s*<td[^>]*>[^<]*</td>\s*<td class=\"num best\">", overall
    )
    assert best_rows == ["ndcg", "clicks"]


def test_report_is_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "r.html"
    path.write_text("old")
    with pytest.raises(ParameterError):
        write_report(Report(title="empty", summary={}), path)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]
    write_report(small_report(), path)
    assert "test report" in path.read_text()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _headless(browser: str, *args: str) -> subprocess.CompletedProcess:
    """One headless Chromium run with a throwaway profile and no network of its own."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, timeout=120, check=False)


def _near(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> int:
    return int((np.abs(pixels.astype(int) - np.array(rgb)).max(axis=-1) <= tol).sum())


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    """Open the report as a person would: a screenshot shows the tables and the plot."""
    browser = _chromium()
    if browser is None:
        pytest.skip(
            "chromium not found: `make test` installs Debian's chromium package with apt-get "
            "where it can (apt-get install chromium); this check needs a real browser"
        )
    from PIL import Image

    page = write_report(small_report(), tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    res = _headless(browser, f"--screenshot={shot}", "--window-size=1280,1800", page.as_uri())
    assert shot.is_file(), res.stderr.decode(errors="replace")[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (1800, 1280)
    not_white = (pixels < 245).any(axis=-1).mean()
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert not_white > 0.03 and colours > 200, (not_white, colours)
    # the plot's bars (matplotlib's first two colours) are on screen: the embedded PNG decoded
    assert _near(pixels, (31, 119, 180)) > 500 and _near(pixels, (255, 127, 14)) > 500
    # the best-run cells' green background: the tables were laid out with the inline style
    assert _near(pixels, (227, 244, 230), tol=3) > 200

    dom = _headless(browser, "--dump-dom", page.as_uri()).stdout.decode()
    assert dom.count("<table") == 4 and dom.count("<img") == 1
    assert "two-stage &lt;b&gt;" in dom and "1: title only" in dom
