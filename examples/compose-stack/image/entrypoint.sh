#!/bin/sh
# Serves /health ({"status":"ok","release":...}) and /secret.sha256, the SHA-256 of SECRET_VALUE as this
# container sees it: a test that knows the secret proves it arrived byte for byte, and the value itself never
# appears in an HTTP answer or a log.
broken=${BROKEN:-no}
if [ -n "${BROKEN_STAGE:-}" ] && [ "$BROKEN_STAGE" != "${STAGE:-}" ]; then broken=no; fi
if [ "$broken" = exit ]; then
  echo "release ${RELEASE:-?} is broken on purpose: exiting" >&2
  exit 1
fi
mkdir -p /www
if [ "$broken" != http ]; then
  printf '{"status":"ok","release":"%s","stage":"%s"}\n' "${RELEASE:-}" "${STAGE:-}" >/www/health
fi
printf %s "${SECRET_VALUE-}" | sha256sum | cut -d' ' -f1 >/www/secret.sha256
httpd -f -p "${PORT:-8080}" -h /www &
# A shell as PID 1 ignores SIGTERM unless it traps it: without this every recreate waits out podman's 10 s
# stop timeout and then kills.
trap 'kill $! 2>/dev/null; exit 0' TERM INT
wait
