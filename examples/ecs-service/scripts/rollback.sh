#!/bin/sh
# Returns the service to a task definition (family:revision) and waits until it is stable.
set -eu
env="$1"
previous="$2"
[ -n "$previous" ] || { echo "nothing to roll back to" >&2; exit 1; }
aws ecs update-service --cluster "afu9-$env" --service control-center \
  --task-definition "$previous" --force-new-deployment >/dev/null
aws ecs wait services-stable --cluster "afu9-$env" --services control-center
