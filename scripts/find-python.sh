#!/bin/sh
# Prints the Python 3.11 that `make` makes the virtual environment with (pyproject.toml: requires-python 3.11):
# $1 (make's PYTHON) if given; else python3.11 on PATH; else python3 if it is 3.11; else a pyenv-installed 3.11
# (pyenv's shims answer only for the active version). Otherwise says in one line what is needed and fails.
is_311() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1; }
version() { v=$("$1" --version 2>&1 | head -n 1); echo "${v:-no answer}"; }
how="install it, or point at it: make run PYTHON=/path/to/python3.11"

if [ -n "$1" ]; then
  is_311 "$1" && { echo "$1"; exit 0; }
  echo "make: PYTHON=$1 is not a working Python 3.11 ($(version "$1")); layerwise needs Python 3.11: $how" >&2
  exit 1
fi
for candidate in python3.11 python3; do
  is_311 "$candidate" && { echo "$candidate"; exit 0; }
done
if command -v pyenv >/dev/null 2>&1; then
  for candidate in "$(pyenv root)"/versions/3.11*/bin/python3.11; do
    is_311 "$candidate" && { echo "$candidate"; exit 0; }
  done
fi
echo "make: layerwise needs Python 3.11 and found none (python3 is $(version python3)): $how" >&2
exit 1
