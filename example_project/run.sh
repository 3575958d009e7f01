#!/usr/bin/env bash
# Starts the example: builds the board's front end, migrates its SQLite database, runs the Logux server
# (0.13.1, proxy mode) and Django under gunicorn, and prints the URL. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")"
export PYTHONPATH="$(cd .. && pwd)${PYTHONPATH:+:$PYTHONPATH}"
export LOGUX_CONTROL_SECRET="${LOGUX_CONTROL_SECRET:-parole}"
DJANGO_PORT="${DJANGO_PORT:-8000}"
LOGUX_PORT="${LOGUX_PORT:-31337}"
export LOGUX_URL="http://127.0.0.1:${LOGUX_PORT}/"

node board/frontend/build.mjs
python manage.py migrate --noinput -v0
python manage.py demo_users
mkdir -p .logs
# The Logux server refuses LOGUX_* variables it does not know, such as our LOGUX_URL.
# NODE_ENV=production: in development mode 0.13.1 floods every page's console when one socket closes.
env -u LOGUX_URL -u LOGUX_CONFORMANCE NODE_ENV="${NODE_ENV:-production}" LOGUX_BACKEND="http://127.0.0.1:${DJANGO_PORT}/logux/" LOGUX_PORT="$LOGUX_PORT" \
  node logux_server.mjs > .logs/logux.log 2>&1 &
LOGUX_PID=$!
# The outbox's delivery worker: retries what the Logux server missed, and sends deletions a second time.
python manage.py logux_deliver > .logs/deliver.log 2>&1 &
DELIVER_PID=$!
trap 'kill $LOGUX_PID $DELIVER_PID 2>/dev/null || true' EXIT INT TERM

echo "Board: http://127.0.0.1:${DJANGO_PORT}/ (log in as alice/alice or bob/bob; the admin is at /admin/)"
echo "Logux server: ws://127.0.0.1:${LOGUX_PORT}/ (log in example_project/.logs/logux.log)"
gunicorn --workers 2 --bind "127.0.0.1:${DJANGO_PORT}" --access-logfile - example.wsgi
