#!/usr/bin/env bash
# Makes sure Debian's chromium is on this machine for the web view's tests (test/ui drives it
# headless with playwright-core, which downloads no browser). As root, installs Debian's chromium
# package when missing (non-interactively); otherwise fails saying what to install. Never skips.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [[ -x "$CHROMIUM" ]]; then
  exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
  echo "ensure-chromium: $CHROMIUM is missing and this is not root: install it (apt-get install chromium)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: $CHROMIUM is missing and apt-get is missing" >&2
  exit 1
fi
echo "ensure-chromium: installing chromium from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } </dev/null >/dev/null; then
  echo "ensure-chromium: apt-get could not install chromium (see above)" >&2
  exit 1
fi
[[ -x "$CHROMIUM" ]] || { echo "ensure-chromium: installed, but $CHROMIUM is missing" >&2; exit 1; }
