#!/usr/bin/env bash
# The console's browser tests drive Debian's chromium through Playwright's Python package
# (a browser download from the internet is not available on the build machines).
# Installs chromium from the Debian archive when it is missing; needs root (or sudo).
set -euo pipefail
for candidate in "${SOC_TEST_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then exit 0; fi
done
echo "chromium is missing: installing it from the Debian archive (apt-get) for the console's browser tests" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "run as root, or install chromium (apt-get install chromium)" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
