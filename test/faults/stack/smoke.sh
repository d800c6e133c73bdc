#!/bin/sh
# The staging tests: can be held like up.sh, then ask the server which release it runs.
. ./hold.sh
hold tests
exec node smoke-test.cjs
