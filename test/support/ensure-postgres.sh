#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries are on this machine for the ledger tests, which start
# their own throwaway server (test/support/postgres-server.ts). As root, installs Debian's
# postgresql package when missing (non-interactively) and makes sure a non-root user exists to
# run the server as; otherwise fails saying what to install. Never skips.
set -euo pipefail

have_server() {
  local d
  if [[ -n "${PG_BIN:-}" && -x "$PG_BIN/postgres" ]]; then return 0; fi
  for d in /usr/lib/postgresql/*/bin; do
    if [[ -x "$d/postgres" ]]; then return 0; fi
  done
  if command -v pg_config >/dev/null 2>&1 && [[ -x "$(pg_config --bindir)/postgres" ]]; then
    return 0
  fi
  return 1
}

if ! have_server; then
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "ensure-postgres: the postgresql server is not installed and this is not root:" \
      "install it (apt-get install postgresql) or set PG_BIN to its bin directory" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-postgres: the postgresql server is not installed and apt-get is missing:" \
      "install postgresql and set PG_BIN to its bin directory" >&2
    exit 1
  fi
  echo "ensure-postgres: installing postgresql from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql; } </dev/null >/dev/null; then
    echo "ensure-postgres: apt-get could not install postgresql (see above)" >&2
    exit 1
  fi
  have_server || { echo "ensure-postgres: postgresql installed, but no server binary found" >&2; exit 1; }
fi

# PostgreSQL refuses to run as root: the tests run it as this user.
user="${PG_TEST_USER:-postgres}"
if [[ "$(id -u)" -eq 0 ]] && ! id -u "$user" >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
fi
