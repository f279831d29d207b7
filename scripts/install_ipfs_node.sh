#!/usr/bin/env bash
# Installs the real IPFS node the IPFS tests run against: js-ipfs (npm package ipfs@0.66.1) in
# .cache/ipfs-node, plus a preload that adds Promise.withResolvers, which its dependencies expect
# and Node.js 20 lacks. Idempotent: npm runs only when that version is not installed yet.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
prefix=.cache/ipfs-node
version=0.66.1
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install_ipfs_node: node and npm are not both installed; the IPFS tests will be skipped." >&2
  exit 0
fi
installed=$(node -p "require('./$prefix/node_modules/ipfs/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$version" ]; then
  echo "install_ipfs_node: installing ipfs@$version with npm (a few minutes, once)..."
  npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "ipfs@$version"
fi
cat > "$prefix/polyfill.cjs" <<'JS'
// Promise.withResolvers (ES2024) for Node.js < 22; loaded with NODE_OPTIONS=--require.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
JS
echo "install_ipfs_node: js-ipfs $version is in $PWD/$prefix (jsipfs: $prefix/node_modules/.bin/jsipfs)"
