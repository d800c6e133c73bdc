#!/bin/sh
# Stops the server when a first deploy is rolled back and there is nothing to return to.
pidfile="$HD_PATH/shared/app.pid"
[ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
rm -f "$pidfile"
exit 0
