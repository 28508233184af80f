#!/usr/bin/env bash
# The README's test command: every tier, cheapest first. Builds the packs first (skipped when up to date), with
# the full-size graph templates the release build ships (--release): the audit at the end builds the release.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/packs.sh --release
echo "== python toolkit (pytest)"
/usr/bin/python3 -m pytest -q model/tests bench/py
echo "== typecheck"
npx tsc --noEmit
echo "== lint: ESLint (typescript-eslint, type-aware), knip (unused files, exports, dependencies), Prettier"
npm run --silent lint
echo "== unit and handler tests (vitest, Node)"
npx vitest run --project unit
echo "== engine in Chromium, WASM and WebGPU (vitest + playwright)"
npx vitest run --project browser
echo "== the built extension in Chromium (vitest + playwright), on a virtual X display (Xvfb)"
# Headless Chromium ignores the display; test/e2e/real-ui.test.ts needs it to drive the browser's own context menu and
# shortcut with xdotool (without a display it skips, so `npm run test:e2e` alone stays headless).
command -v xvfb-run >/dev/null && command -v xdotool >/dev/null || { echo "xvfb-run and xdotool are missing: run scripts/setup.sh" >&2; exit 1; }
xvfb-run -a -s "-screen 0 1280x800x24" npx vitest run --project e2e
echo "== security audit of the release builds (Chrome; Firefox, with web-ext lint) and the e2e builds"
npx vite build --logLevel warn
npm run --silent build:firefox
AUDIT_BUILDS=1 npx vitest run --project unit test/audit/security-audit.test.ts
