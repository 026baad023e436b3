#!/usr/bin/env bash
# Make sure the Debian packages the local stack needs are present: PostgreSQL server binaries
# and Mosquitto (broker + clients). As root we install them; otherwise we say what to install.
set -euo pipefail
need=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
# optional: the headless browser of the web tests (Playwright cannot download its own here);
# without it those tests skip with a reason
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ]; then need+=(chromium); else echo "optional: apt-get install chromium (browser tests)" >&2; fi
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${need[*]}" >&2
  echo "install them with:  sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# keep package installs from starting the system-wide services: we run private ones
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.guanjia
if [ ! -e /usr/sbin/policy-rc.d ]; then cp /usr/sbin/policy-rc.d.guanjia /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT; fi
rm -f /usr/sbin/policy-rc.d.guanjia
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
