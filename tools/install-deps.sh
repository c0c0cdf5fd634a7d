#!/usr/bin/env bash
# install-deps.sh — install the Debian/Ubuntu packages attnbench builds with, only those missing.
# Works as root or through sudo; prints what it installs. Used by `make deps` (and so `make test`/`make study`).
set -euo pipefail

packages=(build-essential pkg-config libjansson-dev libpcre2-dev libopenblas-dev libopenblas-openmp-dev zlib1g-dev
          libcurl4-openssl-dev gnuplot-nox)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: missing packages (${missing[*]}) and no apt-get: install them with your package manager" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
