#!/usr/bin/env bash
# Print the path of a working Python interpreter of the version given (e.g. 3.13), or nothing.
# pyenv's shims exist for every installed version but fail for one that is not selected,
# so each candidate is run once before it is trusted.
set -u
want=${1:?usage: find-python.sh 3.13}
ok() { "$1" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$want'.split('.'))))" >/dev/null 2>&1; }
candidates=()
p=$(command -v "python$want" 2>/dev/null) && candidates+=("$p")
root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for d in "$root"/versions/"$want"*/bin/python"$want"; do [ -x "$d" ] && candidates+=("$d"); done
candidates+=(/usr/bin/python"$want" /usr/local/bin/python"$want")
p=$(command -v python3 2>/dev/null) && candidates+=("$p")
for c in "${candidates[@]}"; do
  if ok "$c"; then echo "$c"; exit 0; fi
done
exit 0
