"""Screenshots of the web UI for README.md: weft on a fresh data directory, the demo runs of
`sdk_scenarios/ui_demo.py` logged with the official SDK (without its hostile model), and a
1280 px wide PNG of each view (runs, run, compare, leaderboard), cropped to its content (the
runs page in dark colours too). Views this build does not serve are left out. Run through `scripts/ui-screenshots`.

Usage: ui_screenshots.py OUT_DIR
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

import httpx
from conftest import create_key, start_weft
from test_ui import BASE, ENTITY, Demo, Ui, run_demo, sign_in, start_chromium


def main() -> None:
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = pathlib.Path(tmp_name)
        data_dir = tmp / "data"
        data_dir.mkdir()
        server = start_weft(data_dir, create_key(data_dir, "--entity", ENTITY))
        driver = None
        try:
            scenario = run_demo(server, tmp, "--no-hostile")
            api = httpx.Client(base_url=server.base, auth=("api", server.key), timeout=30)
            demo = Demo(weft=server, scenario=scenario, api=api)
            runs = {r["summary"]["weave"]["display_name"]: r["evaluation_run_id"] for r in demo.runs()}
            v1, v2 = runs["capitals lookup-v1"], runs["capitals lookup-v2"]
            # (file, path, dark colour scheme)
            shots = [
                ("ui-runs.png", BASE, False),
                ("ui-runs-dark.png", BASE, True),
                ("ui-run.png", f"{BASE}/runs/{v2}", False),
                ("ui-compare.png", f"{BASE}/compare?runs={v1},{v2}&baseline={v1}", False),
                ("ui-leaderboard.png", f"{BASE}/leaderboard", False),
            ]
            driver = start_chromium(required=True)
            ui = Ui(driver=driver, demo=demo)
            sign_in(ui, "/", server.key)
            with ui.http() as http:
                for name, path, dark in shots:
                    status = http.get(path).status_code
                    if status != 200:
                        print(f"{name}: {path} answers {status}, left out")
                        continue
                    ui.scheme(dark)
                    ui.get(path)
                    saved = ui.screenshot(name, to=out / name, fit=True)
                    print(f"{name}: {saved} ({saved.stat().st_size // 1024} KiB)")
        finally:
            if driver is not None:
                driver.quit()
            server.proc.terminate()
            server.proc.wait(timeout=15)


if __name__ == "__main__":
    main()
