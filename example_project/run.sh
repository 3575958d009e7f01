#!/usr/bin/env bash
# Starts the example: builds the board's front end, migrates its SQLite database, runs the Logux side,
# logux_deliver and Django under gunicorn, and prints the URL. Ctrl-C stops them all.
#   LOGUX_STACK=bridge (default, `make example`): `manage.py logux_server`, our bridge on @logux/server
#                      0.14, and a page built with @logux/client 0.23;
#   LOGUX_STACK=proxy (`make example-proxy`): @logux/server 0.13.1 in proxy mode and @logux/client 0.21.
# DJANGO_PORT (8000) and LOGUX_PORT (31337) choose the ports.
set -euo pipefail
cd "$(dirname "$0")"
export PYTHONPATH="$(cd .. && pwd)${PYTHONPATH:+:$PYTHONPATH}"
export LOGUX_CONTROL_SECRET="${LOGUX_CONTROL_SECRET:-parole}"
DJANGO_PORT="${DJANGO_PORT:-8000}"
LOGUX_PORT="${LOGUX_PORT:-31337}"
LOGUX_STACK="${LOGUX_STACK:-bridge}"
export LOGUX_URL="http://127.0.0.1:${LOGUX_PORT}/"
export BOARD_LOGUX_STACK="$LOGUX_STACK"

case "$LOGUX_STACK" in
  bridge | proxy) ;;
  *) echo "LOGUX_STACK must be bridge or proxy, not '$LOGUX_STACK'" >&2; exit 2 ;;
esac

# A port another program holds would make one server die in the background while the URL is printed
# as if all was well: refuse to start instead, naming the variable that moves it.
for pair in "DJANGO_PORT:$DJANGO_PORT" "LOGUX_PORT:$LOGUX_PORT"; do
  name="${pair%%:*}" port="${pair#*:}"
  if ! python -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1])))" "$port" 2>/dev/null; then
    echo "Port $port ($name) is taken: stop what uses it, or run e.g. make example $name=$((port + 1))" >&2
    exit 1
  fi
done

node board/frontend/build.mjs
python manage.py migrate --noinput -v0
python manage.py demo_users
mkdir -p .logs
if [ "$LOGUX_STACK" = bridge ]; then
  python manage.py logux_server --backend "http://127.0.0.1:${DJANGO_PORT}/logux/" --port "$LOGUX_PORT" \
    > .logs/logux.log 2>&1 &
else
  # The Logux server refuses LOGUX_* variables it does not know, such as our LOGUX_URL.
  # NODE_ENV=production: in development mode 0.13.1 floods every page's console when one socket closes.
  env -u LOGUX_URL -u LOGUX_CONFORMANCE -u LOGUX_STACK NODE_ENV="${NODE_ENV:-production}" \
    LOGUX_BACKEND="http://127.0.0.1:${DJANGO_PORT}/logux/" LOGUX_PORT="$LOGUX_PORT" \
    node logux_server.mjs > .logs/logux.log 2>&1 &
fi
LOGUX_PID=$!
# The outbox's delivery worker: retries what the Logux server missed, and sends deletions a second time.
python manage.py logux_deliver > .logs/deliver.log 2>&1 &
DELIVER_PID=$!
trap 'kill $LOGUX_PID $DELIVER_PID 2>/dev/null || true' EXIT INT TERM

echo "Board: http://127.0.0.1:${DJANGO_PORT}/ (log in as alice/alice or bob/bob; the admin is at /admin/)"
echo "Logux server ($LOGUX_STACK stack): ws://127.0.0.1:${LOGUX_PORT}/ (log in example_project/.logs/logux.log)"
gunicorn --workers 2 --bind "127.0.0.1:${DJANGO_PORT}" --access-logfile - example.wsgi
