#!/usr/bin/env bash
# Rebuilds the web front end from web/package-lock.json (npm ci) and fails when the committed
# bundle in modelatlas/viz/static differs from the build: the page users get must be the source's.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  echo "check-web-build: npm is not installed (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
(cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm run build --silent >/dev/null)
if ! git diff --quiet -- modelatlas/viz/static || [ -n "$(git ls-files --others --exclude-standard modelatlas/viz/static)" ]; then
  echo "check-web-build: modelatlas/viz/static differs from a fresh build of web/ (run 'cd web && npm ci && npm run build' and commit):" >&2
  git status --short -- modelatlas/viz/static >&2
  exit 1
fi
echo "check-web-build: modelatlas/viz/static matches the build of web/"
