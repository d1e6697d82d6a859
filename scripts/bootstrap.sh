# Sourced by scripts/test and scripts/demo: a project virtualenv with the package and its test
# dependencies, reinstalled only when pyproject.toml changes.
set -euo pipefail
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "personalize-consumer needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
VENV="${VENV:-.venv}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  # pip's and the build backend's chatter goes to a log, shown only when the install fails.
  echo "installing personalize-consumer and its dependencies into $VENV (first run only)..." >&2
  log="$VENV/install.log"
  if ! { "$VENV/bin/python" -m pip install --quiet --upgrade pip &&
         "$VENV/bin/python" -m pip install --quiet -e '.[test]'; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install failed (log: $log)" >&2
    exit 1
  fi
  rm -f "$VENV"/.installed-* && touch "$stamp"
fi
