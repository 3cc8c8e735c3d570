#!/usr/bin/env bash
# A bank's first day on fraudops, with the CLI: land a file, train, score, label, monitor.
# examples/README.md says what each step shows.
#
# Usage: examples/first_day.sh [workdir]        (default workdir: .demo/first-day)
# Storage: DataStorage / AzureWebJobsStorage when set, else the Azurite of `make azurite` on 127.0.0.1:10000.
# Each step prints its command and the command's one-line JSON summary; the logs go to <workdir>/fraudops.log.
set -euo pipefail
cd "$(dirname "$0")/.."

FRAUDOPS=${FRAUDOPS:-.venv/bin/fraudops}
HISTORY_ROWS=${HISTORY_ROWS:-10000}  # the bank's labelled history; a real one has millions, and trains the same way
TODAY_ROWS=${TODAY_ROWS:-1000}       # the first day's transactions
# A short model search, so the day takes a minute: the defaults (local.settings.json.example) search longer
export TRAIN_SEARCH_TRIALS=${TRAIN_SEARCH_TRIALS:-3} TRAIN_MAX_BIN=${TRAIN_MAX_BIN:-255}
export TRAIN_COMPARE_FAMILIES=${TRAIN_COMPARE_FAMILIES:-false} TRAIN_NUM_BOOST_ROUND=${TRAIN_NUM_BOOST_ROUND:-300}
work=${1:-.demo/first-day}
mkdir -p "$work"
log="$work/fraudops.log"
: >"$log"

step() {  # step <title> <fraudops args...>: the command, then its summary (or the reason it failed)
  local title=$1
  shift
  printf '\n== %s\n$ fraudops %s\n' "$title" "$*"
  "$FRAUDOPS" "$@" 2>>"$log" | tail -n 1 || { tail -n 3 "$log" >&2; exit 1; }
}

step "1. The storage containers (Bicep creates them in Azure)" init

step "2. The bank's history: a labelled file in its format (here generated)" \
  generate --rows "$HISTORY_ROWS" --seed 1 --fraud-rate 0.02 --out "$work/history.csv"
step "   landed in raw/: checked against the dataset contract, curated to Parquet" \
  etl "$work/history.csv" --name first-day/history.csv

step "3. The first model: trained, judged on the latest rows, published as champion" train

step "4. The day's transactions" generate --rows "$TODAY_ROWS" --seed 2 --fraud-rate 0.02 --out "$work/generated.csv"
# A bank sends its own transaction ids: the labels name them later
awk -F, -v OFS=, 'NR == 1 { print $0, "\"transaction_id\""; next } { print $0, "day1-" NR - 1 }' \
  "$work/generated.csv" >"$work/today.csv"
step "   scored as a batch file (scores to a CSV)" score "$work/today.csv" --out "$work/today-scores.csv"
step "   scored one by one, as the stream function does (and recorded for monitoring)" \
  replay "$work/today.csv" --local

# Weeks of chargebacks and investigators' verdicts, in a minute: a label for three transactions in five
awk -F, -v OFS=, -v at="$(date -u +%Y-%m-%dT%H:%M:%SZ)" '
  NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "\"Class\"") c = i; if ($i == "\"transaction_id\"") t = i }
            print "transaction_id", "label", "labelled_at", "source"; next }
  (NR - 2) % 5 < 3 { print $t, $c, at, "chargeback" }' "$work/today.csv" >"$work/labels.csv"
step "5. Labels for what was served: landed, joined to the predictions, kept for the next training" \
  labels "$work/labels.csv"

step "6. The daily monitoring run: realised precision and recall, drift, alerts, the HTML report" monitor

printf '\nDone. Files in %s; the logs in %s.\n' "$work" "$log"
