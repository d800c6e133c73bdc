#!/bin/sh
# The fault stack's "up": replaces the running server with this release's. It can be held half way (after the
# release switch, before the old server is stopped) so a fault lands while the command runs.
set -e
. ./hold.sh
hold up
pidfile="$HD_PATH/shared/app.pid"
if [ -f "$pidfile" ]; then
  old=$(cat "$pidfile")
  kill "$old" 2>/dev/null || true
  i=0
  while kill -0 "$old" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
fi
setsid node server.cjs >"$HD_PATH/shared/app.log" 2>&1 </dev/null &
echo $! >"$pidfile"
