#!/bin/sh
# Starts this release's server in place of the running one (the "up" of the command strategy).
set -e
pidfile="$HD_PATH/shared/app.pid"
if [ -f "$pidfile" ]; then
  old=$(cat "$pidfile")
  kill "$old" 2>/dev/null || true
  i=0
  while kill -0 "$old" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
fi
setsid node server.js >"$HD_PATH/shared/app.log" 2>&1 </dev/null &
echo $! >"$pidfile"
