#!/usr/bin/env bash
# lint.clang_format: every tracked .cpp/.hpp is laid out as the repository's
# .clang-format says (Debian's clang-format 14), except the files listed in
# format_pending.txt beside this script. The file list comes from
# `git ls-files` at test time, so a fresh clone checks exactly what is
# committed. A missing tool or checkout fails the test; it never skips.
# Usage: clang_format.sh SOURCE_DIR
set -euo pipefail
src=${1:?usage: clang_format.sh SOURCE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
pending_file=$here/format_pending.txt

clang_format=${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}
if [[ -z $clang_format ]]; then
  echo "lint.clang_format: clang-format not found (Debian: apt-get install clang-format)" >&2
  exit 1
fi
cd "$src"
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "lint.clang_format: $src is not a git checkout (the file list is git ls-files)" >&2
  exit 1
fi

declare -A pending=()
while IFS= read -r line; do
  line=${line%%#*}
  line=${line//[[:space:]]/}
  [[ -n $line ]] && pending[$line]=1
done <"$pending_file"

files=()
while IFS= read -r -d '' f; do
  [[ -e $f ]] || continue  # deleted in the work tree, not yet committed
  if [[ -n ${pending[$f]:-} ]]; then
    unset "pending[$f]"
    continue
  fi
  files+=("$f")
done < <(git ls-files -z -- '*.cpp' '*.hpp')
for f in "${!pending[@]}"; do
  echo "lint.clang_format: note: $f is listed in tests/lint/format_pending.txt but is not a tracked file" >&2
done

echo "$("$clang_format" --version); checking ${#files[@]} files"
if ! printf '%s\0' "${files[@]}" | xargs -0 -n 16 -P 2 "$clang_format" --style=file --dry-run -Werror; then
  echo "lint.clang_format: FAILED: the files above differ from .clang-format's layout;" \
       "run: $clang_format -i FILE" >&2
  exit 1
fi
echo "lint.clang_format: ok"
