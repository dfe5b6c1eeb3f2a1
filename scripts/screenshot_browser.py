"""The README's picture: a headless-Chromium screenshot of the neighbour browser's item page, served
from a real lakehouse (by default the one `make demo` leaves in ./lakehouse, i.e. the demo's trained
model, not a random-weights fixture).

    .venv/bin/python scripts/screenshot_browser.py [--lakehouse lakehouse] [--item 10039] \
        [--out docs/neighbour_browser.png]

It starts `catalog2vec serve` on a free loopback port, waits for /healthz, opens /item/<id> in
Debian's chromium through Selenium (what tests/e2e/test_serve_browser.py drives), saves the PNG and
stops the server. Needs chromium + chromedriver (`make setup` installs them when run as root).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 180) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"catalog2vec serve exited with {proc.returncode}")
        time.sleep(0.5)
    raise SystemExit(f"catalog2vec serve did not answer {base}/healthz within {timeout_s:.0f}s")


def screenshot(url: str, out: Path, width: int, height: int) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_bin = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if chromium is None or not Path(driver_bin).exists():
        raise SystemExit("chromium and chromedriver not found (Debian: apt-get install -y chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    with tempfile.TemporaryDirectory() as profile:
        for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", f"--window-size={width},{height}", f"--user-data-dir={profile}"):
            opts.add_argument(arg)
        drv = webdriver.Chrome(service=Service(executable_path=driver_bin), options=opts)
        try:
            drv.set_page_load_timeout(120)
            drv.get(url)
            drv.execute_script("return document.readyState")
            time.sleep(1.0)  # the thumbnails are <img> requests of their own
            out.parent.mkdir(parents=True, exist_ok=True)
            drv.save_screenshot(str(out))
        finally:
            drv.quit()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lakehouse", default=str(REPO / "lakehouse"), help="lakehouse root (default ./lakehouse)")
    p.add_argument("--item", default="10039", help="item id whose page is shot (default 10039)")
    p.add_argument("--out", default=str(REPO / "docs" / "neighbour_browser.png"), help="PNG to write")
    p.add_argument("-k", type=int, default=12, help="neighbours on the page (default 12)")
    p.add_argument("--size", default="1280x1100", help="browser window WIDTHxHEIGHT (default 1280x1100)")
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "catalog2vec.cli", "serve", "--lakehouse", args.lakehouse,
                             "--port", str(port), "-k", str(args.k)], cwd=REPO)
    try:
        wait_healthy(base, proc)
        screenshot(f"{base}/item/{args.item}", Path(args.out), width, height)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
