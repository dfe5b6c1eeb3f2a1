#!/usr/bin/env bash
# Chromium + chromedriver (Debian packages) for the neighbour-browser test (tests/e2e/test_serve_browser.py).
# Installs only when one is missing AND we run as root with apt-get (CI runs as root); otherwise it
# says so and the test skips. Playwright / Selenium-Manager browser downloads are not used.
# CATALOG2VEC_SKIP_BROWSER_INSTALL=1 turns it off.
set -uo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "${CATALOG2VEC_SKIP_BROWSER_INSTALL:-0}" = "1" ]; then
  echo "[setup] chromium/chromedriver missing; CATALOG2VEC_SKIP_BROWSER_INSTALL=1: the browser test will skip"
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "[setup] chromium/chromedriver missing and not root with apt-get: the browser test will skip" \
       "(install them with: sudo apt-get install -y chromium chromium-driver)"
  exit 0
fi
echo "[setup] installing chromium + chromium-driver (Debian) for the browser test"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; then
  echo "[setup] $(chromium --version 2>/dev/null | head -1), $(chromedriver --version 2>/dev/null | head -1)"
else
  echo "[setup] WARNING: apt-get install chromium chromium-driver failed: the browser test will skip"
fi
exit 0
