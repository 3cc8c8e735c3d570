#!/usr/bin/env bash
# Start or stop the project's Azurite (npm, pinned in package-lock.json) on 127.0.0.1.
# Usage: scripts/azurite.sh start|stop|status   (data in .azurite/, pid in .azurite/azurite.pid)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=.azurite
PID_FILE="$DATA/azurite.pid"
BLOB_PORT=${AZURITE_BLOB_PORT:-10000}

running() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$BLOB_PORT") 2>/dev/null; }

case "${1:-}" in
  start)
    if running; then echo "azurite already running (pid $(cat "$PID_FILE"))"; exit 0; fi
    if port_open; then echo "something already listens on 127.0.0.1:$BLOB_PORT; using it"; exit 0; fi
    [ -x node_modules/.bin/azurite ] || { echo "azurite is not installed: run 'make demo-setup'" >&2; exit 1; }
    mkdir -p "$DATA"
    nohup node_modules/.bin/azurite --silent --skipApiVersionCheck --loose \
      --location "$DATA" --blobHost 127.0.0.1 --blobPort "$BLOB_PORT" \
      --queueHost 127.0.0.1 --queuePort 10001 --tableHost 127.0.0.1 --tablePort 10002 \
      > "$DATA/azurite.log" 2>&1 &
    echo $! > "$PID_FILE"
    for _ in $(seq 1 100); do port_open && { echo "azurite started (pid $(cat "$PID_FILE"))"; exit 0; }; sleep 0.1; done
    echo "azurite did not open port $BLOB_PORT; see $DATA/azurite.log" >&2; exit 1 ;;
  stop)
    if running; then kill "$(cat "$PID_FILE")"; rm -f "$PID_FILE"; echo "azurite stopped"; else rm -f "$PID_FILE"; echo "azurite was not started by make"; fi ;;
  status)
    if running; then echo "running (pid $(cat "$PID_FILE"))"; else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
