#!/usr/bin/env bash
# Make sure the Debian packages the local stack needs are present: PostgreSQL server binaries
# and Mosquitto (broker + clients). As root we install them; otherwise we say what to install.
# Optional packages (a foreign Modbus master and a headless browser for the tests) are installed
# when we are root and only suggested otherwise: the tests that need them skip with a reason.
set -euo pipefail
need=()
optional=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v mbpoll >/dev/null 2>&1 || optional+=(mbpoll)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || optional+=(chromium fonts-wqy-microhei)
[ ${#need[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if [ ${#optional[@]} -gt 0 ]; then
    echo "optional system packages (some tests skip without them): sudo apt-get install -y ${optional[*]}" >&2
  fi
  if [ ${#need[@]} -gt 0 ]; then
    echo "missing system packages: ${need[*]}" >&2
    echo "install them with:  sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  exit 0
fi
echo "installing system packages: ${need[*]} ${optional[*]}"
export DEBIAN_FRONTEND=noninteractive
# keep package installs from starting the system-wide services: we run private ones
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
if [ ${#optional[@]} -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${optional[@]}" >/dev/null \
    || echo "could not install optional packages ${optional[*]}; the tests that need them will skip" >&2
fi
