#!/bin/sh
# Starts this release's server in place of the running one (the "up" of the command strategy).
set -e
pidfile="$HD_PATH/shared/app.pid"
# Like many real apps, say what configuration was loaded, secret included: the deploy tool must mask it in
# every log line and report (the tests check that it does).
if [ -f .env ]; then echo "up: loaded $(grep -v "^#" .env | head -n 1)"; fi
if [ -f "$pidfile" ]; then
  old=$(cat "$pidfile")
  kill "$old" 2>/dev/null || true
  i=0
  while kill -0 "$old" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
fi
setsid node server.js >"$HD_PATH/shared/app.log" 2>&1 </dev/null &
echo $! >"$pidfile"
