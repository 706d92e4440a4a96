"""The web UI in a real browser: headless Chromium, driven by selenium, against weft holding
evaluation runs the official SDK logged (`sdk_scenarios/ui_demo.py`: two evaluations, three
models, one of them named and answering with a `<script>` tag, one failed run).

Every view in `VIEWS` gets the same checks (it renders signed in, its headers carry a strict
Content-Security-Policy, no script other than the UI's own is in the page and none ran, the
layout does not overflow 1280 px, light and dark colour schemes both apply, its CSV and JSONL
exports hold the rows the page shows), its own checks against what the API answers, and a
screenshot per colour scheme under `target/ui-screenshots/`. To cover a new view, write its
check and add one `View(...)` line.

The module skips only if Chromium or its driver cannot start; `scripts/test` installs both and
sets `WEFT_UI_REQUIRE_BROWSER=1`, which turns that skip into a failure.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from conftest import BIN, ROOT, Weft, create_key, start_weft, store_env

SCENARIOS = pathlib.Path(__file__).resolve().parent / "sdk_scenarios"
SCREENSHOTS = ROOT / "target" / "ui-screenshots"
ENTITY, PROJECT = "acme", "proj"
BASE = f"/{ENTITY}/{PROJECT}/weave"
HOSTILE = "<script>alert(1)</script>"
MARKER = "SCENARIO_RESULT "
WIDTH, HEIGHT = 1280, 900

# Before any page script: dialogs are recorded instead of shown, and so are the page's CSP
# violations (an inline script or style the policy blocked).
PROBE = """
window.__weft = {dialogs: [], csp: []};
for (const f of ["alert", "confirm", "prompt"]) {
  window[f] = (m) => { window.__weft.dialogs.push(f + ": " + m); };
}
document.addEventListener("securitypolicyviolation", (e) => {
  window.__weft.csp.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


# ---------------------------------------------------------------------------------------------
# Data: the SDK scenario, and what the API answers about it
# ---------------------------------------------------------------------------------------------


def sdk_env(weft: Weft, home: pathlib.Path) -> dict[str, str]:
    """The environment pointing the official SDK at `weft` (as conftest's `sdk_env` does)."""
    (home / "home").mkdir(parents=True, exist_ok=True)
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "WF_TRACE_SERVER_URL": weft.base,
        "WANDB_BASE_URL": weft.base,
        "WANDB_API_KEY": weft.key,
        "WANDB_ERROR_REPORTING": "false",
        "WEAVE_USE_SERVER_CACHE": "false",
        # The SDK prints a link to each trace it starts: the tests follow those of the runs.
        "WEAVE_PRINT_CALL_LINK": "true",
        "HOME": str(home / "home"),
        "TMPDIR": str(home / "tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def run_demo(weft: Weft, home: pathlib.Path, *args: str) -> dict[str, Any]:
    """Runs `sdk_scenarios/ui_demo.py` against `weft`; returns its result, with the call links
    the SDK printed (`call_links`)."""
    proc = subprocess.run(
        [sys.executable, str(SCENARIOS / "ui_demo.py"), f"{ENTITY}/{PROJECT}", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=sdk_env(weft, home),
        cwd=SCENARIOS,
    )
    detail = f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-6000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    assert proc.returncode == 0 and lines, f"ui_demo exited with {proc.returncode}\n{detail}"
    result = json.loads(lines[-1][len(MARKER) :])
    assert result["ok"], result
    result["call_links"] = re.findall(r"(https?://\S+/r/call/[0-9a-fA-F-]+)", proc.stdout + proc.stderr)
    return result


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def ref_name(ref: str) -> str:
    """`weave:///e/p/object/Name:digest` → `Name`."""
    return ref.rsplit("/", 1)[-1].split(":", 1)[0]


@dataclass
class Demo:
    """What the SDK logged, and what the API lists for it."""

    weft: Weft
    scenario: dict[str, Any]
    api: httpx.Client

    def list(self, resource: str, **params: str) -> list[dict[str, Any]]:
        """`GET /v2/{entity}/{project}/{resource}`, with the key."""
        resp = self.api.get(f"/v2/{ENTITY}/{PROJECT}/{resource}", params=params)
        assert resp.status_code == 200, resp.text
        return jsonl(resp.text)

    def runs(self) -> list[dict[str, Any]]:
        """`GET /v2/{entity}/{project}/evaluation_runs`."""
        return self.list("evaluation_runs")

    def run(self, run_id: str) -> dict[str, Any]:
        (run,) = [r for r in self.runs() if r["evaluation_run_id"] == run_id]
        return run

    def run_named(self, name: str) -> dict[str, Any]:
        (run,) = [r for r in self.runs() if r["summary"]["weave"].get("display_name") == name]
        return run

    def predictions(self, run_id: str) -> list[dict[str, Any]]:
        """`GET /v2/{entity}/{project}/predictions?evaluation_run_id=`."""
        return self.list("predictions", evaluation_run_id=run_id)

    def scores(self, run_id: str) -> dict[str, dict[str, float]]:
        """`GET /v2/{entity}/{project}/scores?evaluation_run_id=`, by prediction id, then by
        scorer (the dotted path of the value). The SDK logged these scores in its predictions'
        outputs, so a score's id is its prediction's id, `:`, and the path."""
        out: dict[str, dict[str, float]] = {}
        for score in self.list("scores", evaluation_run_id=run_id):
            prediction, _, path = score["score_id"].partition(":")
            assert path, score
            out.setdefault(prediction, {})[score["scorer"]] = score["value"]
        return out

    def examples(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's predictions by dataset row (the digest its row ref ends with), each with
        its scores (`scores`)."""
        scores = self.scores(run_id)
        out = {}
        for p in self.predictions(run_id):
            row = p["inputs"].rsplit("/attr/rows/id/", 1)[-1] if isinstance(p["inputs"], str) else None
            assert row and row not in out, p
            out[row] = {**p, "scores": scores.get(p["prediction_id"], {})}
        return out

    def child_calls(self, call_id: str) -> list[dict[str, Any]]:
        """The children of a call, as `POST /calls/stream_query` lists them."""
        body = {"project_id": f"{ENTITY}/{PROJECT}", "filter": {"parent_ids": [call_id]}}
        resp = self.api.post("/calls/stream_query", json=body)
        assert resp.status_code == 200, resp.text
        return jsonl(resp.text)


# ---------------------------------------------------------------------------------------------
# The browser
# ---------------------------------------------------------------------------------------------


def cannot_start(why: str, required: bool) -> None:
    """Ends the test: a failure if the browser is `required`, a skip otherwise."""
    if required:
        pytest.fail(why)
    pytest.skip(why)


def start_chromium(required: bool):
    """Headless Chromium through chromedriver, or a skip (a failure if `required`)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:  # pragma: no cover
        cannot_start(f"Chromium cannot start: selenium is not installed ({e})", required)
    browser = os.environ.get("WEFT_CHROMIUM") or next(
        (p for p in map(shutil.which, ["chromium", "chromium-browser", "google-chrome"]) if p), None
    )
    driver_bin = os.environ.get("WEFT_CHROMEDRIVER") or shutil.which("chromedriver")
    if browser is None or driver_bin is None:
        why = "no chromium or chromedriver on PATH (apt-get install chromium chromium-driver)"
        cannot_start(f"Chromium cannot start: {why}", required)
    errors = []
    # As root, or where user namespaces are not allowed, Chromium runs only without its sandbox.
    for no_sandbox in ([True] if os.geteuid() == 0 else [False, True]):
        opts = webdriver.ChromeOptions()
        opts.binary_location = browser
        for arg in [
            "--headless=new",
            f"--window-size={WIDTH},{HEIGHT}",
            "--force-device-scale-factor=1",
            "--hide-scrollbars",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--no-first-run",
            "--lang=en-US",
        ] + (["--no-sandbox"] if no_sandbox else []):
            opts.add_argument(arg)
        opts.set_capability("unhandledPromptBehavior", "ignore")
        try:
            return webdriver.Chrome(options=opts, service=Service(driver_bin))
        except Exception as e:  # noqa: BLE001 - any failure to start is reported as such
            message = " ".join(str(e).split("Stacktrace:")[0].split())
            errors.append(message.split("; For documentation")[0] or repr(e))
    cannot_start(f"Chromium cannot start: {'; '.join(errors)}", required)


@dataclass
class Ui:
    """The signed-in browser and the server it talks to."""

    driver: Any
    demo: Demo
    screenshots: list[pathlib.Path] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.demo.weft.url(path)

    def get(self, path: str) -> None:
        self.driver.get(self.url(path))
        self.wait_loaded()

    def follow(self, action: Callable[[], Any]) -> None:
        """Does `action` (a click, a key) and waits until the page it opens has loaded."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        from selenium.common.exceptions import WebDriverException

        old = self.driver.find_element(By.TAG_NAME, "html")
        action()

        def replaced(_driver: Any) -> bool:
            # The old page's root is gone once asking about it fails: Chromium says so either
            # as a stale element or as a node that "does not belong to the document".
            try:
                old.is_enabled()
            except WebDriverException:
                return True
            return False

        WebDriverWait(self.driver, 15).until(replaced)
        self.wait_loaded()

    def wait_loaded(self) -> None:
        for _ in range(100):
            if self.driver.execute_script("return document.readyState") == "complete":
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.driver.current_url} did not finish loading")

    def text(self) -> str:
        """The page's visible text."""
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").text

    def h1(self) -> str:
        return self.driver.execute_script("const h = document.querySelector('h1'); return h ? h.textContent : ''")

    def on_sign_in_page(self) -> bool:
        return bool(self.driver.execute_script("return !!document.querySelector('form[action=\"/ui/sign-in\"]')"))

    def cookie(self) -> str | None:
        c = self.driver.get_cookie("weft_session")
        return c["value"] if c else None

    def http(self) -> httpx.Client:
        """Plain HTTP with the browser's session cookie (HttpOnly, so taken through WebDriver)."""
        cookie = self.cookie()
        assert cookie, "the browser holds no session cookie"
        return httpx.Client(base_url=self.demo.weft.base, cookies={"weft_session": cookie}, timeout=30)

    def table(self) -> tuple[list[str], list[list[str]], list[Any]]:
        """The first data table of the page: header labels, cell texts, and the row elements."""
        head = self.driver.execute_script(
            "const t = document.querySelector('table.data');"
            "return t ? [...t.tHead.rows[0].cells].map(th => th.textContent.trim()) : []"
        )
        cells = self.driver.execute_script(
            "const t = document.querySelector('table.data tbody');"
            "return t ? [...t.rows].map(r => [...r.cells].map(c => c.textContent.trim())) : []"
        )
        rows = self.driver.execute_script(
            "const t = document.querySelector('table.data tbody'); return t ? [...t.rows] : []"
        )
        return head, cells, rows

    def scheme(self, dark: bool) -> None:
        """Emulates `prefers-color-scheme`."""
        value = "dark" if dark else "light"
        self.driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"media": "", "features": [{"name": "prefers-color-scheme", "value": value}]}
        )

    def screenshot(self, name: str, to: pathlib.Path | None = None, fit: bool = False) -> pathlib.Path:
        """A screenshot of the whole page (up to 3000 px tall), 1280 px wide, saved in
        `target/ui-screenshots/` (or as `to`); `fit` crops it to the page's content."""
        def viewport(height: int) -> None:
            metrics = {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False}
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)

        viewport(200 if fit else HEIGHT)
        height = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
        viewport(min(height, 3000) if fit else max(HEIGHT, min(height, 3000)))
        path = to or SCREENSHOTS / f"{os.environ.get('WEFT_TEST_STORE', 'sqlite')}-{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        assert self.driver.save_screenshot(str(path)), path
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        self.screenshots.append(path)
        return path


def with_format(url: str, fmt: str) -> str:
    """`url` with `format=fmt` in its query."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "format"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("format", fmt)])))


def sign_in(ui: Ui, path: str, key: str) -> None:
    """Opens `path`, which answers the sign-in page, and signs in by pasting `key`."""
    from selenium.webdriver.common.by import By

    ui.get(path)
    assert ui.on_sign_in_page(), f"{path} did not ask to sign in:\n{ui.text()}"
    box = ui.driver.find_element(By.ID, "api_key")
    box.clear()
    box.send_keys(key)
    ui.follow(lambda: ui.driver.find_element(By.CSS_SELECTOR, "form[action='/ui/sign-in'] button").click())


# ---------------------------------------------------------------------------------------------
# Fixtures: one server, one demo, one signed-in browser for the whole module
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("ui")
    data_dir = tmp / "data"
    data_dir.mkdir()
    server = start_weft(data_dir, create_key(data_dir, "--entity", ENTITY))
    api = httpx.Client(base_url=server.base, auth=("api", server.key), timeout=30)
    try:
        scenario = run_demo(server, tmp)
        # A project of another entity, which the viewer's key must not see.
        admin = httpx.Client(base_url=server.base, auth=("api", create_key(data_dir, "--admin")), timeout=30)
        start = {
            "project_id": "rival/secret",
            "id": str(uuid.uuid4()),
            "trace_id": str(uuid.uuid4()),
            "op_name": "hidden",
            "started_at": "2026-01-01T00:00:00Z",
            "inputs": {},
            "attributes": {},
        }
        resp = admin.post("/call/start", json={"start": start})
        assert resp.status_code == 200, resp.text
        admin.close()
        yield Demo(weft=server, scenario=scenario, api=api)
    finally:
        api.close()
        server.proc.terminate()
        server.proc.wait(timeout=15)


@pytest.fixture(scope="module")
def ui(demo: Demo) -> Iterator[Ui]:
    driver = start_chromium(required=os.environ.get("WEFT_UI_REQUIRE_BROWSER") == "1")
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
        ui = Ui(driver=driver, demo=demo)
        # A wrong key is refused on the form, which stays there.
        sign_in(ui, BASE, "not-a-weft-key")
        assert ui.on_sign_in_page() and "No active key has that secret" in ui.text(), ui.text()
        # The right one opens the page first asked for.
        sign_in(ui, BASE, demo.weft.key)
        assert not ui.on_sign_in_page(), ui.text()
        assert urlsplit(driver.current_url).path == BASE, driver.current_url
        assert ui.cookie(), "signing in set no session cookie"
        yield ui
    finally:
        driver.quit()


# ---------------------------------------------------------------------------------------------
# Views: the generic checks, and each view's own
# ---------------------------------------------------------------------------------------------


def export_rows(ui: Ui, url: str) -> tuple[list[str], list[dict[str, str]], list[dict[str, Any]]]:
    """The CSV and JSONL exports of the page at `url`: CSV header, CSV rows, JSONL rows."""
    with ui.http() as http:
        out = {}
        for fmt, kind in [("csv", "text/csv"), ("jsonl", "application/jsonl")]:
            resp = http.get(with_format(url, fmt))
            assert resp.status_code == 200, f"{fmt}: {resp.status_code} {resp.text[:300]}"
            assert resp.headers["content-type"].startswith(kind), resp.headers
            assert "attachment" in resp.headers.get("content-disposition", ""), resp.headers
            out[fmt] = resp.text
    reader = csv.reader(io.StringIO(out["csv"]))
    header = next(reader)
    rows = [dict(zip(header, r, strict=True)) for r in reader]
    return header, rows, jsonl(out["jsonl"])


def check_projects(ui: Ui, page: dict[str, Any]) -> None:
    """One row per project the key may see, with the API's run count."""
    runs = ui.demo.runs()
    head, cells, _ = ui.table()
    shown = {row[0]: row for row in cells}
    assert set(shown) == {f"{ENTITY}/{PROJECT}"}, f"projects shown: {list(shown)} (rival/secret must be hidden)"
    assert shown[f"{ENTITY}/{PROJECT}"][head.index("Evaluation runs")] == str(len(runs))
    (row,) = page["jsonl"]
    assert row["project"] == f"{ENTITY}/{PROJECT}" and row["runs"] == len(runs), row
    assert page["csv"][0]["runs"] == str(len(runs)), page["csv"]
    # The project links to its runs page.
    href = ui.driver.execute_script("return document.querySelector('table.data tbody a').getAttribute('href')")
    assert href == BASE, href


def summary_metric(summary: dict[str, Any], path: str) -> float | None:
    v: Any = summary
    for part in path.split("."):
        if not isinstance(v, dict) or part not in v:
            return None
        v = v[part]
    return float(v) if isinstance(v, (int, float)) else None


RUN_COLUMNS = {"run", "evaluation", "model", "status", "started", "duration"}


def newest_first(runs: Any) -> list[str]:
    """Run ids as the runs page orders them by default: by start, then id, newest first."""
    ordered = sorted(runs, key=lambda r: (r["started_at"], r["evaluation_run_id"]), reverse=True)
    return [r["evaluation_run_id"] for r in ordered]


def page_run_ids(ui: Ui) -> list[str]:
    """The runs of the runs page shown, in order."""
    return ui.driver.execute_script(
        "return [...document.querySelectorAll('table.data tbody input[name=run]')].map(i => i.value)"
    )


def pager(ui: Ui) -> tuple[str, dict[str, str]]:
    """The pager's count and its links, by `rel`: their text."""
    count, links = ui.driver.execute_script(
        "const n = document.querySelector('nav.pager');"
        "return [n.querySelector('span').textContent,"
        " Object.fromEntries([...n.querySelectorAll('a[rel]')].map(a => [a.rel, a.textContent]))]"
    )
    return count, links


def short_number(x: float) -> str:
    """A number as the pages show it in short (four significant digits), as `layout::number`."""
    if x == int(x) and abs(x) < 1e15:
        return f"{x:.0f}"
    digits = min(max(4 - (math.floor(math.log10(abs(x))) + 1), 0), 8)
    text = f"{x:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def summary_leaves(summary: dict[str, Any]) -> dict[str, float]:
    """The numbers and booleans (as 1 or 0) of a run's summary by dotted path, `weave` left out."""
    out: dict[str, float] = {}

    def walk(path: str, v: Any) -> None:
        if isinstance(v, bool):
            out[path] = float(v)
        elif isinstance(v, (int, float)):
            out[path] = float(v)
        elif isinstance(v, dict):
            for k, child in v.items():
                walk(f"{path}.{k}" if path else k, child)

    walk("", {k: v for k, v in summary.items() if k != "weave"})
    return out


def check_runs(ui: Ui, page: dict[str, Any]) -> None:
    """Every run the API lists, with its name, evaluation, model, status, times and metrics."""
    runs = {r["evaluation_run_id"]: r for r in ui.demo.runs()}
    scenario = ui.demo.scenario
    # What the SDK did is what the API lists: 6 runs, the broken scorer's one failed.
    assert len(runs) == len(scenario["runs"]) == 6, runs
    by_name = {r["summary"]["weave"]["display_name"]: r for r in runs.values()}
    assert set(by_name) == {r["display_name"] for r in scenario["runs"]}, by_name.keys()
    for r in scenario["runs"]:
        api = by_name[r["display_name"]]
        assert api["model"] == scenario["models"][r["model"]], (r, api)
        assert api["status"] == ("failed" if r["summary"] is None else "completed"), (r, api)

    # The page: every run, newest first (by start, then id), on one page.
    head, cells, _ = ui.table()
    ids = page_run_ids(ui)
    assert ids == newest_first(runs.values()), (ids, list(runs))
    col = {label: i for i, label in enumerate(head)}
    for run_id, row in zip(ids, cells, strict=True):
        api = runs[run_id]
        assert row[col["Run"]] == api["summary"]["weave"]["display_name"], row
        assert row[col["Evaluation"]] == ref_name(api["evaluation"]), row
        assert row[col["Model"]] == ref_name(api["model"]), row
        assert row[col["Status"]] == api["status"], row
    failed = ui.driver.execute_script(
        "return [...document.querySelectorAll('table.data tbody tr.failed input[name=run]')].map(i => i.value)"
    )
    assert failed == [i for i in ids if runs[i]["status"] == "failed"], failed
    assert pager(ui) == (f"{len(runs)} runs", {}), pager(ui)
    # The filters offer the project's evaluations and models, by name and digest.
    for dimension in ("evaluation", "model"):
        options = ui.driver.execute_script(
            f"return [...document.querySelectorAll('select[name={dimension}] option')]"
            ".map(o => [o.value, o.textContent, o.selected])"
        )
        assert options[0] == ["", "any", True], options
        assert sorted(v for v, _, _ in options[1:]) == sorted({r[dimension] for r in runs.values()}), options
        for value, label, _ in options[1:]:
            name, digest = label.split(":")
            assert name == ref_name(value) and value.rsplit(":", 1)[-1].startswith(digest), (value, label)

    # The exports: the same rows in the same order, with the API's values in full.
    assert [r["run"] for r in page["csv"]] == ids == [r["run"] for r in page["jsonl"]]
    for c, j in zip(page["csv"], page["jsonl"], strict=True):
        api = runs[j["run"]]
        assert j["evaluation"] == ref_name(api["evaluation"]) == c["evaluation"], (c, j)
        assert j["model"] == ref_name(api["model"]) == c["model"], (c, j)
        assert j["status"] == api["status"] == c["status"], (c, j)
        assert j["started"] == api["started_at"] == c["started"], (c, j, api)
        if api["finished_at"] is None:
            assert j["duration"] is None and c["duration"] == "", (c, j)
        else:
            assert j["duration"] > 0 and float(c["duration"]) == pytest.approx(j["duration"]), (c, j)
        # Metric columns (`m:<summary path>`) hold the summary's numbers.
        for key in set(page["csv_header"]) - RUN_COLUMNS:
            expected = summary_metric(api["summary"], key.removeprefix("m:"))
            if expected is None:
                assert j[key] is None and c[key] == "", (key, c, j, api)
            else:
                assert j[key] == pytest.approx(expected) and float(c[key]) == pytest.approx(expected), (key, c, j)
    # A column for each scorer's score of either evaluation (the fraction of true for booleans,
    # the mean for numbers), and the model's latency; the page shows each number shortly, in
    # full in its title.
    metrics = {
        "m:exact_match.correct.true_fraction",
        "m:similarity.ratio.mean",
        "m:within_tolerance.ok.true_fraction",
        "m:abs_error.mean",
        "m:model_latency.mean",
    }
    assert metrics <= set(page["csv_header"]), page["csv_header"]
    titles = ui.driver.execute_script(
        "return [...document.querySelectorAll('table.data tbody tr')].map(r => [...r.cells]"
        ".map(c => { const s = c.querySelector('span[title]'); return s ? s.title : null; }))"
    )
    for run_id, row in zip(ids, titles, strict=True):
        for i, key in enumerate(page["csv_header"]):
            if key.startswith("m:"):
                expected = summary_metric(runs[run_id]["summary"], key.removeprefix("m:"))
                assert (row[i] is None) if expected is None else float(row[i]) == pytest.approx(expected), (key, row)
    # The capitals runs: lookup-v2 gets 5 of 6 right, lookup-v1 2 of 6.
    fractions = {
        by_name[f"capitals {m}"]["evaluation_run_id"]: f for m, f in [("lookup-v2", 5 / 6), ("lookup-v1", 2 / 6)]
    }
    col_exact = head.index("exact_match.correct")
    for run_id, row in zip(ids, cells, strict=True):
        if run_id in fractions:
            assert float(row[col_exact]) == pytest.approx(fractions[run_id], abs=1e-4), row

    # The hostile run's name shows as text, and its model under the name the SDK published.
    hostile = by_name[f"capitals {HOSTILE} run"]
    assert HOSTILE in ui.text()
    assert ref_name(hostile["model"]) == "script-alert-1-script", hostile["model"]


def with_query(url: str, **params: str) -> str:
    """`url` with `params` set in its query."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


def get_jsonl(ui: Ui, url: str) -> list[dict[str, Any]]:
    with ui.http() as http:
        resp = http.get(url)
    assert resp.status_code == 200, f"{url}: {resp.status_code} {resp.text[:300]}"
    return jsonl(resp.text)


def example_numbers(ui: Ui) -> dict[str, str]:
    """The run page's examples shown: each one's number, and the call its link opens."""
    links = ui.driver.execute_script(
        "return [...document.querySelectorAll('table.data tbody tr')]"
        ".map(r => [r.cells[0].textContent.trim(), r.cells[0].querySelector('a').getAttribute('href')])"
    )
    for _, href in links:
        assert href.startswith(f"{BASE}/calls/"), href
    return {number: href.rsplit("/", 1)[-1] for number, href in links}


def check_run(ui: Ui, page: dict[str, Any]) -> None:
    """The hostile model's run: the summary's numbers, one example per prediction the API lists
    with its output and scores, outputs holding a `<script>` tag shown as text; the failed-only
    filter (on the run with a failed example); an example opens its call and its child calls."""
    demo = ui.demo
    here = ui.driver.current_url
    run_id = urlsplit(here).path.rsplit("/", 1)[-1]
    run = demo.run(run_id)
    assert ui.h1() == run["summary"]["weave"]["display_name"] == f"capitals {HOSTILE} run", ui.h1()

    # The summary cards: every number of the run's summary, shown shortly.
    cards = ui.driver.execute_script(
        "return [...document.querySelectorAll('.cards .card')]"
        ".map(c => [c.querySelector('.label').textContent, c.querySelector('.value').textContent])"
    )
    expected = summary_leaves(run["summary"])
    assert "exact_match.correct.true_fraction" in expected and "model_latency.mean" in expected, expected
    assert dict(cards) == {k: short_number(v) for k, v in expected.items()}, (cards, expected)
    assert len(cards) == len(expected), cards

    # The examples: one per prediction, with its output and the scores the API lists for it.
    predictions = {p["prediction_id"]: p for p in demo.predictions(run_id)}
    scores = demo.scores(run_id)
    numbers = example_numbers(ui)
    assert sorted(numbers.values()) == sorted(predictions), (numbers, list(predictions))
    rows = get_jsonl(ui, with_query(here, format="jsonl", limit="500"))
    assert len(rows) == len(predictions) == 6, rows
    scorers = {"exact_match.correct", "similarity.ratio"}
    for row in rows:
        prediction = predictions[numbers[row["example"]]]
        assert row["output"] == prediction["output"], (row, prediction)
        assert row["output"].startswith(HOSTILE + " "), row
        shown = {k.removeprefix("score."): v for k, v in row.items() if k.startswith("score.") and v is not None}
        assert shown.pop("model_latency") > 0, row
        assert set(shown) == scorers and shown == pytest.approx(scores[prediction["prediction_id"]]), (row, scores)
        assert row["error"] is None, row
    # The page shows the same scores, in full in their titles, and the outputs as text.
    head, cells, _ = ui.table()
    titles = ui.driver.execute_script(
        "return [...document.querySelectorAll('table.data tbody tr')].map(r => [...r.cells]"
        ".map(c => { const s = c.querySelector('span[title]'); return s ? s.title : null; }))"
    )
    for row, title in zip(page["jsonl"], titles, strict=True):
        for i, key in enumerate(page["csv_header"]):
            if key.startswith("score."):
                assert (title[i] is None) if row[key] is None else float(title[i]) == pytest.approx(row[key]), (key, row)
    outputs = [c[head.index("Output")] for c in cells]
    assert all(HOSTILE in o for o in outputs), outputs
    assert ui.driver.execute_script("return document.querySelectorAll('table.data script').length") == 0

    # Failed only: the run with a row its model failed on shows that example alone, with its error.
    broken = demo.run_named("conversions lookup-v1 (broken scorer)")
    broken_url = ui.url(f"{BASE}/runs/{broken['evaluation_run_id']}")
    everything = get_jsonl(ui, with_query(broken_url, format="jsonl"))
    failed = get_jsonl(ui, with_query(broken_url, format="jsonl", failed="1"))
    assert len(everything) == len(demo.predictions(broken["evaluation_run_id"])) == 5, everything
    assert failed == [r for r in everything if r["error"]] and len(failed) == 1, (failed, everything)
    assert failed[0]["output"] is None and "unhashable" in failed[0]["error"], failed
    ui.get(f"{BASE}/runs/{broken['evaluation_run_id']}?failed=1")
    assert "5 (1 failed)" in ui.text(), ui.text()
    assert len(ui.driver.execute_script("return [...document.querySelectorAll('table.data tbody tr.failed')]")) == 1

    # An example opens its call, which shows the calls under it.
    ui.get(urlsplit(here).path)
    from selenium.webdriver.common.by import By

    link = ui.driver.find_element(By.CSS_SELECTOR, "table.data tbody tr a")
    call_id = link.get_attribute("href").rsplit("/", 1)[-1]
    ui.follow(link.click)
    assert urlsplit(ui.driver.current_url).path == f"{BASE}/calls/{call_id}", ui.driver.current_url
    assert call_id in ui.text(), ui.text()
    children = ui.driver.execute_script(
        "return [...document.querySelectorAll('details.tree')].filter(d => !d.parentElement.closest('details.tree'))"
        ".map(d => d.querySelector('summary a').getAttribute('href').split('/').pop())"
    )
    api_children = [c["id"] for c in demo.child_calls(call_id)]
    assert len(api_children) == 1 + len(scorers) and sorted(children) == sorted(api_children), (children, api_children)
    assert ui.driver.execute_script("return window.__weft") == {"dialogs": [], "csp": []}


def compared(ui: Ui) -> list[str]:
    """The runs a compare page shows, baseline first."""
    return ui.driver.execute_script(
        "return [...document.querySelectorAll('ol.runs li a[href*=\"/runs/\"]')].map(a => a.getAttribute('href').split('/').pop())"
    )


def warnings(ui: Ui) -> list[str]:
    return ui.driver.execute_script("return [...document.querySelectorAll('.warning')].map(w => w.textContent)")


def check_compare(ui: Ui, page: dict[str, Any]) -> None:
    """Two runs of one evaluation: each metric's means and the candidate's deltas equal what the
    API's predictions and scores give, the example table holds their scores and outputs row by
    row; no different-datasets warning here, one for runs of two evaluations; SVG charts without
    script; ticking two runs on the runs page and "Compare selected" opens such a page."""
    from selenium.webdriver.common.by import By

    demo = ui.demo
    here = ui.driver.current_url
    query = dict(parse_qsl(urlsplit(here).query))
    base_id, cand_id = query["runs"].split(",")
    assert query["baseline"] == base_id and compared(ui) == [base_id, cand_id], compared(ui)
    examples = {r: demo.examples(r) for r in (base_id, cand_id)}
    shared = sorted(set(examples[base_id]) & set(examples[cand_id]))
    assert len(shared) == 6, shared

    # The metrics: every scorer's, and the model latency.
    by_metric = {row["metric"]: row for row in page["jsonl"]}
    scorers = {name for run in examples.values() for e in run.values() for name in e["scores"]}
    assert set(by_metric) == scorers | {"model_latency"}, by_metric.keys()
    for name in scorers:
        row = by_metric[name]
        values = {r: {k: e["scores"][name] for k, e in examples[r].items() if name in e["scores"]} for r in examples}
        for r in (base_id, cand_id):
            assert row[f"mean.{r}"] == pytest.approx(sum(values[r].values()) / len(values[r])), (name, r, row)
        diffs = [values[cand_id][k] - values[base_id][k] for k in shared]
        assert row[f"delta.{cand_id}"] == pytest.approx(sum(diffs) / len(diffs)), (name, row)
        assert row[f"ci_low.{cand_id}"] <= row[f"delta.{cand_id}"] <= row[f"ci_high.{cand_id}"], row
        better = -1 if row["direction"] == "lower" else 1
        counts = {
            "improved": sum(d * better > 0 for d in diffs),
            "regressed": sum(d * better < 0 for d in diffs),
            "unchanged": sum(d == 0 for d in diffs),
        }
        assert {k: row[f"{k}.{cand_id}"] for k in counts} == counts, (name, row, counts)
    # lookup-v2 gets 3 capitals more right than lookup-v1, and none less: McNemar's exact p = 2/2^3.
    exact = by_metric["exact_match.correct"]
    assert exact[f"mean.{base_id}"] == pytest.approx(2 / 6) and exact[f"mean.{cand_id}"] == pytest.approx(5 / 6)
    assert exact[f"p_value.{cand_id}"] == pytest.approx(0.25), exact
    # The page shows those numbers, in full in the titles of the means.
    head, cells, _ = ui.table()
    titles = ui.driver.execute_script(
        "return [...document.querySelector('table.data tbody').rows].map(r => [...r.cells]"
        ".map(c => { const s = c.querySelector('span[title]'); return s ? s.title : null; }))"
    )
    for row, shown, title in zip(page["jsonl"], cells, titles, strict=True):
        assert shown[0] == row["metric"], (shown, row)
        for r in (base_id, cand_id):
            i = page["csv_header"].index(f"mean.{r}")
            assert float(title[i]) == pytest.approx(row[f"mean.{r}"]), (title, row)
        i = page["csv_header"].index(f"delta.{cand_id}")
        assert title[i] == "over 6 shared examples", title
        assert shown[i] == ("+" if row[f"delta.{cand_id}"] > 0 else "") + short_number(row[f"delta.{cand_id}"]), shown

    # The example table, for the chosen metric: a row per dataset row, each run's score and output.
    metric = ui.driver.execute_script("return document.querySelector('select[name=metric]').value")
    assert metric in scorers, metric
    rows = get_jsonl(ui, with_query(here, format="jsonl", table="examples"))
    assert sorted(r["row"] for r in rows) == shared, rows
    assert ui.driver.execute_script("return document.querySelectorAll('table.data')[1].tBodies[0].rows.length") == 6
    assert pager(ui)[0] == "6 rows", pager(ui)
    for row in rows:
        for r in (base_id, cand_id):
            e = examples[r][row["row"]]
            assert row[f"value.{r}"] == pytest.approx(e["scores"][metric]) and row[f"output.{r}"] == e["output"], row
        assert row[f"delta.{cand_id}"] == pytest.approx(row[f"value.{cand_id}"] - row[f"value.{base_id}"]), row
    with ui.http() as http:
        resp = http.get(with_query(here, format="csv", table="examples"))
    assert resp.status_code == 200 and len(list(csv.DictReader(io.StringIO(resp.text)))) == len(rows)

    # Charts: inline SVG, one per metric at least, with no script in them.
    svg = ui.driver.execute_script(
        "const s = [...document.querySelectorAll('svg')];"
        "return [s.length, s.map(x => x.querySelectorAll('script, foreignObject').length).reduce((a, b) => a + b, 0),"
        " s.map(x => x.textContent).join(' ')]"
    )
    assert svg[0] >= len(by_metric) and svg[1] == 0 and metric in svg[2], svg[:2]
    assert not any("same examples" in w for w in warnings(ui)), warnings(ui)

    # Runs of two evaluations: a warning says they did not see the same examples.
    other = demo.run_named("conversions lookup-v2")["evaluation_run_id"]
    ui.get(f"{BASE}/compare?{urlencode({'runs': f'{cand_id},{other}'})}")
    assert compared(ui) == [cand_id, other], compared(ui)
    assert any("did not all see the same examples" in w for w in warnings(ui)), warnings(ui)
    assert any("different scorers" in w for w in warnings(ui)), warnings(ui)

    # From the runs page: tick the two runs, "Compare selected".
    ui.get(BASE)
    for r in (base_id, cand_id):
        ui.driver.find_element(By.CSS_SELECTOR, f"input[name=run][value='{r}']").click()
    ui.follow(ui.driver.find_element(By.XPATH, "//button[normalize-space()='Compare selected']").click)
    assert urlsplit(ui.driver.current_url).path == f"{BASE}/compare", ui.driver.current_url
    ticked = compared(ui)
    assert sorted(ticked) == sorted([base_id, cand_id]), ticked
    means = {k: v for r in get_jsonl(ui, with_format(ui.driver.current_url, "jsonl")) for k, v in r.items() if k.startswith("mean.")}
    assert means == pytest.approx({k: v for r in page["jsonl"] for k, v in r.items() if k.startswith("mean.")})
    assert ui.driver.execute_script("return window.__weft") == {"dialogs": [], "csp": []}


# The contrast ratio (WCAG) of each element matching a selector: its text colour against the
# background of its nearest ancestor that has one.
CONTRASTS = """
const rgb = (c) => c.match(/[0-9.]+/g).map(Number);
const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
  .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
return [...document.querySelectorAll(arguments[0])].map(e => {
  let bg = e;
  while (bg && (rgb(getComputedStyle(bg).backgroundColor)[3] === 0 || getComputedStyle(bg).backgroundColor === "transparent")) bg = bg.parentElement;
  const [a, b] = [lum(rgb(getComputedStyle(e).color)), lum(rgb(getComputedStyle(bg || document.body).backgroundColor))];
  return [e.textContent, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
});
"""


def check_leaderboard(ui: Ui, page: dict[str, Any]) -> None:
    """Each cell is the chosen metric of the latest run of its (evaluation, model) pair, as the
    API lists runs, and links to that run; the export holds the same cells."""
    metric = ui.driver.execute_script("return document.querySelector('select[name=metric]').value")
    assert metric, "no metric chosen"
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in sorted(ui.demo.runs(), key=lambda r: (r["started_at"], r["evaluation_run_id"])):
        latest[(r["evaluation"], r["model"])] = r
    models = sorted({m for _, m in latest})
    evaluations = sorted({e for e, _ in latest})
    assert page["csv_header"][0] == "model" and sorted(page["csv_header"][1:]) == evaluations, page["csv_header"]
    assert sorted(r["model"] for r in page["jsonl"]) == models, page["jsonl"]
    head, cells, _ = ui.table()
    links = ui.driver.execute_script(
        "return [...document.querySelector('table.data tbody').rows].map(r => [...r.cells]"
        ".map(c => { const a = c.querySelector('a'); return a ? [a.getAttribute('href'), a.title] : null; }))"
    )
    filled = 0
    for row, csv_row, shown, link in zip(page["jsonl"], page["csv"], cells, links, strict=True):
        name, digest = shown[0].split(":")
        assert name == ref_name(row["model"]) and row["model"].rsplit(":", 1)[-1].startswith(digest), shown
        for i, evaluation in enumerate(page["csv_header"][1:], start=1):
            run = latest.get((evaluation, row["model"]))
            expected = summary_metric(run["summary"], metric) if run else None
            if expected is None:
                assert row[evaluation] is None and csv_row[evaluation] == "" and link[i] is None, (row, evaluation)
                continue
            filled += 1
            assert row[evaluation] == pytest.approx(expected) and float(csv_row[evaluation]) == pytest.approx(expected)
            assert link[i][0] == f"{BASE}/runs/{run['evaluation_run_id']}" and float(link[i][1]) == pytest.approx(expected)
            assert shown[i].rstrip(" ★") == short_number(row[evaluation]), (shown, row)
    assert filled >= 3, (metric, page["jsonl"])
    # Every cell's number stays readable on its heat colour, in either colour scheme.
    for dark in (False, True):
        ui.scheme(dark)
        # The emulated scheme applies with the next style recalculation: measure until it has.
        for _ in range(20):
            contrasts = ui.driver.execute_script(CONTRASTS, "table.data tbody td a")
            if contrasts and min(c for _, c in contrasts) >= 3:
                break
            time.sleep(0.1)
        assert contrasts and min(c for _, c in contrasts) >= 3, (dark, contrasts)
    ui.scheme(False)
    # Another metric, through the form.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(ui.driver.find_element(By.NAME, "metric")).select_by_value("abs_error.mean")
    ui.follow(ui.driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click)
    assert "lower is better" in ui.text(), ui.text()
    rows = get_jsonl(ui, with_format(ui.driver.current_url, "jsonl"))
    for row in rows:
        for evaluation, value in row.items():
            if evaluation != "model":
                run = latest.get((evaluation, row["model"]))
                expected = summary_metric(run["summary"], "abs_error.mean") if run else None
                assert value == (pytest.approx(expected) if expected is not None else None), (row, evaluation)
    assert sum(v is not None for row in rows for k, v in row.items() if k != "model") == 2, rows


def sdk_link(demo: Demo, name: str) -> str:
    """The path of the link the SDK printed for the run named `name`."""
    run_id = demo.run_named(name)["evaluation_run_id"]
    (link,) = {link for link in demo.scenario["call_links"] if link.endswith(f"/r/call/{run_id}")}
    assert link.startswith(demo.weft.base + f"/{ENTITY}/{PROJECT}/r/call/"), link
    return urlsplit(link).path


def check_sdk_link(ui: Ui, page: dict[str, Any]) -> None:
    """The link the SDK printed for an evaluation lands on that run's page, and every run got one."""
    run = ui.demo.run_named("capitals lookup-v2")
    assert urlsplit(ui.driver.current_url).path == f"{BASE}/runs/{run['evaluation_run_id']}", ui.driver.current_url
    assert ui.h1() == "capitals lookup-v2"
    printed = {link.rsplit("/", 1)[-1] for link in ui.demo.scenario["call_links"]}
    assert {r["evaluation_run_id"] for r in ui.demo.runs()} <= printed, printed


@dataclass
class View:
    """A page of the UI: its path (given the demo), whether it exports its table, its checks."""

    name: str
    path: Callable[[Demo], str]
    check: Callable[[Ui, dict[str, Any]], None]
    exports: bool = True


def run_path(demo: Demo, name: str) -> str:
    return f"{BASE}/runs/{demo.run_named(name)['evaluation_run_id']}"


def compare_path(demo: Demo, baseline: str, candidate: str) -> str:
    runs = [demo.run_named(n)["evaluation_run_id"] for n in (baseline, candidate)]
    return f"{BASE}/compare?{urlencode({'runs': ','.join(runs), 'baseline': runs[0]})}"


VIEWS = [
    View("projects", lambda d: "/", check_projects),
    View("runs", lambda d: BASE, check_runs),
    View("run", lambda d: run_path(d, f"capitals {HOSTILE} run"), check_run),
    View("compare", lambda d: compare_path(d, "capitals lookup-v1", "capitals lookup-v2"), check_compare),
    View("leaderboard", lambda d: f"{BASE}/leaderboard", check_leaderboard),
    View("sdk-link", lambda d: sdk_link(d, "capitals lookup-v2"), check_sdk_link, exports=False),
]


@pytest.mark.parametrize("view", VIEWS, ids=[v.name for v in VIEWS])
def test_view(ui: Ui, view: View) -> None:
    path = view.path(ui.demo)
    ui.get(path)
    assert not ui.on_sign_in_page(), f"{path}: signed out"
    url = ui.driver.current_url

    # Headers: a policy without inline script (or eval), no framing, no caching.
    with ui.http() as http:
        resp = http.get(url)
    assert resp.status_code == 200, f"{path}: {resp.status_code}"
    csp = resp.headers.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    scripts = directives.get("script-src", directives.get("default-src"))
    assert scripts is not None and "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, csp
    assert "frame-ancestors" in directives and resp.headers.get("cache-control") == "no-store", resp.headers

    # Nothing ran that should not have: no dialog, no blocked inline script or style, and the
    # only script is the UI's own; no inline event handlers, no `javascript:` links.
    probe = ui.driver.execute_script("return window.__weft")
    assert probe == {"dialogs": [], "csp": []}, probe
    srcs = ui.driver.execute_script("return [...document.scripts].map(s => s.getAttribute('src'))")
    assert srcs == ["/ui/assets/ui.js"], srcs
    handlers = ui.driver.execute_script(
        "return [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]"
        ".filter(a => a.name.startsWith('on') || /^\\s*javascript:/i.test(a.value)).map(a => e.tagName + ' ' + a.name))"
    )
    assert handlers == [], handlers

    # Both colour schemes apply, and the layout fits 1280 px.
    backgrounds = {}
    for dark in (False, True):
        ui.scheme(dark)
        backgrounds[dark] = ui.driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        ui.screenshot(f"{view.name}-{'dark' if dark else 'light'}")
    ui.scheme(False)
    assert backgrounds[False] != backgrounds[True], backgrounds
    overflow = ui.driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{path}: the page is {overflow}px wider than the window"

    # The exports hold the rows the page shows, with the same columns.
    page: dict[str, Any] = {}
    if view.exports:
        header, csv_rows, jsonl_rows = export_rows(ui, url)
        _, cells, _ = ui.table()
        assert len(csv_rows) == len(jsonl_rows) == len(cells), (len(csv_rows), len(jsonl_rows), len(cells))
        assert all(list(r) == header for r in jsonl_rows), (header, jsonl_rows[:1])
        assert len(header) == len(ui.table()[0]), header
        page = {"csv_header": header, "csv": csv_rows, "jsonl": jsonl_rows}
    view.check(ui, page)


def test_script_text_shows_as_text(ui: Ui) -> None:
    """The run named with a `<script>` tag: the page shows the tag as text, and no script from
    the data is in the page or ran."""
    ui.get(BASE)
    assert HOSTILE in ui.text()
    cell = ui.driver.execute_script(
        "return [...document.querySelectorAll('table.data tbody a')].map(a => a.textContent)"
        f".find(t => t.includes({json.dumps(HOSTILE)}))"
    )
    assert cell == f"capitals {HOSTILE} run", cell
    injected = ui.driver.execute_script(
        "return [...document.querySelectorAll('script')].filter(s => s.getAttribute('src') !== '/ui/assets/ui.js').length"
    )
    assert injected == 0
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        ui.driver.switch_to.alert.text  # noqa: B018 - reading it is the check
    assert ui.driver.execute_script("return window.__weft.dialogs") == []
    # Filtering by the text finds that run only, and the filter box shows it back as text.
    ui.get(f"{BASE}/runs?{urlencode({'q': HOSTILE})}")
    _, cells, _ = ui.table()
    assert len(cells) == 1 and HOSTILE in cells[0][0], cells
    assert ui.driver.execute_script("return document.querySelector('input[name=q]').value") == HOSTILE
    assert ui.driver.execute_script("return window.__weft") == {"dialogs": [], "csp": []}


def test_runs_sort_filter_and_pages(ui: Ui) -> None:
    """The runs page's links and form: sorting by a metric's header, the status filter, and
    paging, each with exports of the rows shown."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    runs = ui.demo.runs()
    # A metric's header sorts by it, highest first on a second click; runs without it last.
    ui.get(BASE)
    ui.follow(ui.driver.find_element(By.LINK_TEXT, "exact_match.correct").click)
    assert dict(parse_qsl(urlsplit(ui.driver.current_url).query))["sort"] == "m:exact_match.correct.true_fraction"
    ui.follow(ui.driver.find_element(By.PARTIAL_LINK_TEXT, "exact_match.correct").click)
    _, rows, jsonl_rows = export_rows(ui, ui.driver.current_url)
    values = [r["m:exact_match.correct.true_fraction"] for r in jsonl_rows]
    scored = [v for v in values if v is not None]
    assert scored == sorted(scored, reverse=True) and values[: len(scored)] == scored, values
    expected = sorted(
        (r["summary"]["exact_match"]["correct"]["true_fraction"] for r in runs if "exact_match" in r["summary"]),
        reverse=True,
    )
    assert scored == pytest.approx(expected), (scored, expected)

    # The status filter, through the form.
    ui.get(BASE)
    Select(ui.driver.find_element(By.NAME, "status")).select_by_value("failed")
    ui.follow(ui.driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click)
    _, cells, _ = ui.table()
    _, _, exported = export_rows(ui, ui.driver.current_url)
    failed = [r["evaluation_run_id"] for r in runs if r["status"] == "failed"]
    assert [r["run"] for r in exported] == failed and len(cells) == len(failed), (exported, cells)

    # The evaluation filter, through its select: that evaluation's runs, newest first.
    capitals = ui.demo.scenario["evaluations"]["capitals"]
    ui.get(BASE)
    Select(ui.driver.find_element(By.NAME, "evaluation")).select_by_value(capitals)
    ui.follow(ui.driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click)
    expected_ids = newest_first(r for r in runs if r["evaluation"] == capitals)
    assert page_run_ids(ui) == expected_ids and len(expected_ids) == 3, page_run_ids(ui)
    assert [r["run"] for r in export_rows(ui, ui.driver.current_url)[2]] == expected_ids

    # Pages of 4, newest first, by cursor: the first shows 4 and links to older runs, whose page
    # shows the rest and links back to newer ones and to the newest.
    order = newest_first(runs)
    ui.get(f"{BASE}/runs?limit=4")
    assert page_run_ids(ui) == order[:4] and pager(ui) == ("4 runs", {"next": "Older →"}), pager(ui)
    _, _, first = export_rows(ui, ui.driver.current_url)
    ui.follow(ui.driver.find_element(By.CSS_SELECTOR, "nav.pager a[rel=next]").click)
    assert "after" in dict(parse_qsl(urlsplit(ui.driver.current_url).query)), ui.driver.current_url
    assert page_run_ids(ui) == order[4:], (page_run_ids(ui), order)
    assert pager(ui) == (f"{len(runs) - 4} runs", {"first": "Newest", "prev": "← Newer"}), pager(ui)
    _, _, rest = export_rows(ui, ui.driver.current_url)
    assert [r["run"] for r in first + rest] == order
    ui.follow(ui.driver.find_element(By.CSS_SELECTOR, "nav.pager a[rel=prev]").click)
    assert "before" in dict(parse_qsl(urlsplit(ui.driver.current_url).query)), ui.driver.current_url
    assert page_run_ids(ui) == order[:4] and pager(ui) == ("4 runs", {"next": "Older →"}), pager(ui)

    # Sorted by another column, pages go by offset: the duration, longest first.
    ui.get(f"{BASE}/runs?sort=duration&dir=desc&limit=4")
    by_duration = [r["run"] for r in export_rows(ui, ui.driver.current_url)[2]]
    assert pager(ui) == ("Rows 1–4", {"next": "Next →"}), pager(ui)
    ui.follow(ui.driver.find_element(By.CSS_SELECTOR, "nav.pager a[rel=next]").click)
    assert pager(ui) == (f"Rows 5–{len(runs)}", {"prev": "← Previous"}), pager(ui)
    by_duration += [r["run"] for r in export_rows(ui, ui.driver.current_url)[2]]
    at = datetime.datetime.fromisoformat
    seconds = {r["evaluation_run_id"]: at(r["finished_at"]) - at(r["started_at"]) for r in runs}
    assert sorted(by_duration) == sorted(order), by_duration
    assert [seconds[r] for r in by_duration] == sorted(seconds.values(), reverse=True), by_duration
    assert ui.driver.execute_script("return window.__weft") == {"dialogs": [], "csp": []}


def test_keyboard_j_then_enter_opens_the_first_run(ui: Ui) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ui.get(BASE)
    _, _, rows = ui.table()
    first = ui.driver.execute_script(
        "return document.querySelector('table.data tbody tr a[href]').getAttribute('href')"
    )
    ActionChains(ui.driver).send_keys("j").perform()
    assert "cursor" in rows[0].get_attribute("class").split(), rows[0].get_attribute("class")
    ui.follow(ActionChains(ui.driver).send_keys(Keys.ENTER).perform)
    assert urlsplit(ui.driver.current_url).path == first, (ui.driver.current_url, first)
    assert first.startswith(f"{BASE}/runs/"), first


def test_revoking_the_key_ends_the_session(ui: Ui) -> None:
    """Runs last: revoking the key with `weft keys revoke` signs the browser out."""
    ui.get(BASE)
    who = ui.driver.execute_script("return document.querySelector('.who').textContent")
    assert who.startswith("key "), who
    key_id = who.removeprefix("key ").strip()
    data_dir = ui.demo.weft.data_dir
    subprocess.run(
        [str(BIN), "--data-dir", str(data_dir), "keys", "revoke", key_id],
        check=True,
        capture_output=True,
        env={**os.environ, **store_env(data_dir)},
    )
    # At once on SQLite; on ClickHouse within the 2 s a process caches a verified key
    # (docs/clickhouse.md), with a margin for a busy machine.
    deadline = time.monotonic() + 2 + 5
    ui.get(BASE)
    while not ui.on_sign_in_page() and time.monotonic() < deadline:
        time.sleep(0.2)
        ui.get(BASE)
    assert ui.on_sign_in_page(), ui.text()
    assert ui.h1() == "Sign in"
    # The exports are refused too, and the old key signs in no more.
    with ui.http() as http:
        resp = http.get(with_format(ui.url(BASE), "jsonl"), follow_redirects=False)
    assert "evaluation_run_id" not in resp.text and "capitals" not in resp.text, resp.text[:300]
    sign_in(ui, BASE, ui.demo.weft.key)
    assert ui.on_sign_in_page() and "No active key has that secret" in ui.text()
    ui.screenshot("signed-out")
