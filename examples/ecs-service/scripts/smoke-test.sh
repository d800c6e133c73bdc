#!/bin/sh
# Smoke tests against a deployed environment: every endpoint answers as expected, or the script fails.
set -eu
base="$1"
fail=0
check() { if curl -fsS "$base$1" | grep -q "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=$((fail + 1)); fi; }
check / '<html'
check /api/health '"status": *"ok"'
check /api/ready '"ready": *true'
check /api/mcp/health '"status": *"healthy"'
[ "$fail" -eq 0 ] || { echo "$fail smoke test(s) failed"; exit 1; }
