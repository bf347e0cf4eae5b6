#!/usr/bin/env bash
# Debian's Chromium, for the operator page's test (test/operations/admin-page.test.ts)
# and npm run bench:admin, which drive /usr/bin/chromium with puppeteer-core
# (it downloads no browser of its own). Idempotent and quiet: installs only
# when it is missing. Run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q 'install ok installed'; then
  echo "installing chromium"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
[ -x /usr/bin/chromium ] || { echo "error: /usr/bin/chromium is missing after installing chromium" >&2; exit 1; }
exit 0
