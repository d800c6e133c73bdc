# Sourced by the stack's scripts: `hold <point>` waits while $HOME/faults/hold-<point> names this release (or
# "any"), once per fault: the first script to claim it writes its pid and waits until $HOME/faults/go exists.
hold() {
  ctl="$HOME/faults"
  [ -f "$ctl/hold-$1" ] || return 0
  want=$(cat "$ctl/hold-$1" 2>/dev/null)
  [ "$want" = any ] || [ "$want" = "$HD_RELEASE" ] || return 0
  mv "$ctl/hold-$1" "$ctl/held-$1" 2>/dev/null || return 0
  echo $$ > "$ctl/held-$1.pid.tmp" && mv "$ctl/held-$1.pid.tmp" "$ctl/held-$1.pid"
  i=0
  while [ ! -f "$ctl/go" ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i + 1)); done
}
