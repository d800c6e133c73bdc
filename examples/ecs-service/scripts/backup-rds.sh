#!/bin/sh
# A manual RDS snapshot before production changes; its name (last line) is recorded as the rollback point's
# infrastructure snapshot.
set -eu
env="$1"
name="afu9-$env-$(date -u +%Y%m%d%H%M%S)"
aws rds create-db-snapshot --db-instance-identifier "afu9-$env" --db-snapshot-identifier "$name" >/dev/null
aws rds wait db-snapshot-available --db-snapshot-identifier "$name"
echo "$name"
