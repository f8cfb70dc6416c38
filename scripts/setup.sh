#!/usr/bin/env bash
# Quick start, step one: install everything, then run the demo on local stand-ins.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
npm run demo
