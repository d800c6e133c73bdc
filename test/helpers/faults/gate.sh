#!/bin/sh
# ForceCommand of the fault-matrix hosts: runs each client command exactly as sshd would (a shell -c), except
# that the first command containing the text in $HOME/faults/hold-cmd waits until $HOME/faults/go exists. The
# waiting process ends its argv with the whole command (which ends with the deploy tool's per-command token), so
# to the tool's kill and to a later run's repair it looks like the command it stands for. A held SFTP server ends
# when its session does, as a real one would on the end of its input.
ctl="$HOME/faults"
cmd="$SSH_ORIGINAL_COMMAND"
if [ -f "$ctl/hold-cmd" ]; then
  pat=$(cat "$ctl/hold-cmd")
  case "$cmd" in
    *"$pat"*)
      if mv "$ctl/hold-cmd" "$ctl/held-cmd" 2>/dev/null; then
        case "$cmd" in *sftp-server) sftp=yes ;; *) sftp=no ;; esac
        exec /bin/sh -c 'echo $$ > "$1/held-cmd.pid.tmp" && mv "$1/held-cmd.pid.tmp" "$1/held-cmd.pid"
session=$(cut -d" " -f4 /proc/$$/stat)
i=0; while [ ! -f "$1/go" ] && [ $i -lt 3000 ]; do
  [ "$2" = no ] || [ "$(cut -d" " -f4 /proc/$$/stat)" = "$session" ] || exit 1
  sleep 0.1; i=$((i + 1))
done
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"' hold "$ctl" "$sftp" "$cmd"
      fi
      ;;
  esac
fi
exec /bin/sh -c "$cmd"
