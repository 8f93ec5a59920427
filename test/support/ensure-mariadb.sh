#!/usr/bin/env bash
# Makes sure MariaDB's server is on this machine for the real Rekor log of the interop tests
# (test/support/rekor-peer.ts starts its own throwaway server on 127.0.0.1, as the mysql user). As
# root, installs Debian's mariadb-server package when missing (non-interactively, without
# starting its service); otherwise fails saying what to install. Never skips.
set -euo pipefail

if [[ -x /usr/sbin/mariadbd ]] && command -v mariadb-install-db >/dev/null 2>&1 && id -u mysql >/dev/null 2>&1; then
  exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
  echo "ensure-mariadb: mariadb-server is not installed and this is not root: install it (apt-get install mariadb-server)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-mariadb: mariadb-server is not installed and apt-get is missing" >&2
  exit 1
fi
echo "ensure-mariadb: installing mariadb-server from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
# the tests run their own server on a port of their own; a service the package starts is not used
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends mariadb-server; } </dev/null >/dev/null; then
  echo "ensure-mariadb: apt-get could not install mariadb-server (see above)" >&2
  exit 1
fi
[[ -x /usr/sbin/mariadbd ]] || { echo "ensure-mariadb: installed, but /usr/sbin/mariadbd is missing" >&2; exit 1; }
