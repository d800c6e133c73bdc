#!/bin/sh
# Prints the task definition the ECS service runs now (family:revision), one line; nothing if none.
set -eu
env="$1"
aws ecs describe-services --cluster "afu9-$env" --services control-center \
  --query 'services[0].taskDefinition' --output text | sed 's#.*/##'
