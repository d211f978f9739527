#!/usr/bin/env bash
# Regenerates requirements.txt (exact pins with hashes) from requirements.in, with pip-tools in a
# throwaway virtualenv. Run after changing requirements.in; commit both files.
set -euo pipefail
cd "$(dirname "$0")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet pip-tools==7.6.2
"$tmp/venv/bin/pip-compile" --generate-hashes --strip-extras --allow-unsafe --no-header -q \
  -o requirements.txt requirements.in
