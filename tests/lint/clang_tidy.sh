#!/usr/bin/env bash
# lint.clang_tidy: clang-tidy (Debian's clang-tidy 14) with the repository's
# .clang-tidy (its CheckOptions: the naming rules) over the product sources
# in the build's compile database, two at a time; any finding fails the test.
# The check list is narrowed to the one given (see the CMakeLists.txt beside
# this script for why). The sources are the product's: every tracked .cpp
# file outside tests/ and bench/ (git ls-files, so a fresh clone checks what
# is committed and a new part is checked without a change here; generated
# code is not tracked), and diagnostics are also reported from the headers of
# the folders they are in. A missing tool, checkout or compile database fails
# the test; it never skips.
# Usage: clang_tidy.sh SOURCE_DIR BUILD_DIR CHECKS
set -euo pipefail
src=${1:?usage: clang_tidy.sh SOURCE_DIR BUILD_DIR CHECKS}
build=${2:?usage: clang_tidy.sh SOURCE_DIR BUILD_DIR CHECKS}
checks=${3:?usage: clang_tidy.sh SOURCE_DIR BUILD_DIR CHECKS}

clang_tidy=${CLANG_TIDY:-$(command -v clang-tidy-14 || command -v clang-tidy || true)}
if [[ -z $clang_tidy ]]; then
  echo "lint.clang_tidy: clang-tidy not found (Debian: apt-get install clang-tidy)" >&2
  exit 1
fi
db=$build/compile_commands.json
if [[ ! -f $db ]]; then
  echo "lint.clang_tidy: no $db (configure with CMAKE_EXPORT_COMPILE_COMMANDS=ON, as every preset does)" >&2
  exit 1
fi
cd "$src"
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "lint.clang_tidy: $src is not a git checkout (the file list is git ls-files)" >&2
  exit 1
fi
src=$(pwd -P)

files=()
declare -A parts=()
while IFS= read -r -d '' f; do
  [[ -e $f ]] || continue  # deleted in the work tree, not yet committed
  if grep -qF "\"file\": \"$src/$f\"" "$db"; then
    files+=("$f")
    parts[${f%%/*}]=1
  else
    echo "lint.clang_tidy: note: $f is not in $db (not built in this configuration), not checked" >&2
  fi
done < <(git ls-files -z -- '*.cpp' ':!:tests/*' ':!:bench/*')
if ((${#files[@]} == 0)); then
  echo "lint.clang_tidy: no product source found in $db" >&2
  exit 1
fi

src_re=$(printf '%s' "$src" | sed 's/[][\\.*^$+?(){}|]/\\&/g')
header_filter="^$src_re/($(IFS='|'; echo "${!parts[*]}"))/"
echo "$("$clang_tidy" --version | grep -i version); checking ${#files[@]} files with checks $checks"
set +e
printf '%s\0' "${files[@]}" |
  xargs -0 -n 1 -P 2 "$clang_tidy" -p "$build" --quiet "--checks=$checks" --warnings-as-errors='*' \
    "--header-filter=$header_filter" 2>&1 | grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$'
status=${PIPESTATUS[1]}
set -e
if ((status != 0)); then
  echo "lint.clang_tidy: FAILED: findings above (clang-tidy exit status via xargs: $status)" >&2
  exit 1
fi
echo "lint.clang_tidy: ok"
