#!/usr/bin/env bash
# Installs what cog-pipeline needs on a Debian machine with Node.js 20: Debian's GDAL (for the
# node executable, the demo and the tests) when it is missing, then the npm dependencies and the
# build the jobs run (dist/, see lib/build.ts), which `npm ci` makes (package.json's "prepare").
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v gdal_translate >/dev/null 2>&1 || ! command -v gdalinfo >/dev/null 2>&1; then
  echo "==> installing Debian's gdal-bin"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq gdal-bin >/dev/null
fi
echo "==> npm ci (then npm run build)"
npm ci --no-audit --no-fund
