#!/usr/bin/env bash
# System tools some tests use, from Debian's packages: headless Chromium (browser tests),
# espeak-ng (speech of known pitch and rate) and Node.js/npm (the independent FHIR validator).
# Installed when missing and this machine can (root with apt-get); otherwise the tests that need
# them skip with a reason. Never fails the run: a missing tool is reported, not fatal.
set -uo pipefail

want=()
command -v chromium >/dev/null 2>&1 || want+=(chromium)
command -v espeak-ng >/dev/null 2>&1 || want+=(espeak-ng)
command -v node >/dev/null 2>&1 || want+=(nodejs npm)
[ ${#want[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "test tools: installing ${want[*]} from Debian's packages"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${want[@]}" \
      >/tmp/vigil-test-tools.log 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${want[@]}" \
      >/tmp/vigil-test-tools.log 2>&1 \
      || echo "test tools: could not install ${want[*]} (see /tmp/vigil-test-tools.log); their tests skip"
  fi
else
  echo "test tools: ${want[*]} missing and not installable here (needs root and apt-get); their tests skip"
fi
exit 0
