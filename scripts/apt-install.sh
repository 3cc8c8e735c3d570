#!/usr/bin/env bash
# Install one Debian package of the toolchain, saying first which, how big and why.
# Usage: scripts/apt-install.sh <package> <size> <why>
# The Makefile calls it only when the package is missing; root installs directly, anyone else through sudo.
set -euo pipefail
[ $# = 3 ] || { echo "usage: $0 <package> <size> <why>" >&2; exit 2; }
package=$1 size=$2 why=$3
echo "installing $package (Debian package, $size): $why"

if [ "$(id -u)" = 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "cannot install $package: not root and no sudo; as root run: apt-get install -y $package" >&2
  exit 1
fi
command -v apt-get >/dev/null 2>&1 || {
  echo "cannot install $package: no apt-get here; install $package with your system's package manager" >&2
  exit 1
}
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
