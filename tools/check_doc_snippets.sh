#!/usr/bin/env bash
# Compiles every ```cpp block of README.md and docs/*.md against the headers, so the
# docs cannot drift from the code. A block with main() is compiled as it is; a block
# that defines functions at namespace scope gets an empty main; any other block is
# wrapped in main() (its #include lines kept at the top). Exits non-zero if a block
# does not compile.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work" README.md docs/*.md <<'PY'
import re, sys, pathlib
out = pathlib.Path(sys.argv[1])
n = 0
for name in sys.argv[2:]:
    text = pathlib.Path(name).read_text()
    for i, block in enumerate(re.findall(r"```cpp\n(.*?)```", text, re.S)):
        # The block's own #include lines go to the top, next to metro/metro.hpp.
        lines = block.splitlines(keepends=True)
        includes = "".join(line for line in lines if line.startswith("#include"))
        body = "".join(line for line in lines if not line.startswith("#include"))
        prefix = '#include "metro/metro.hpp"\n' + includes + 'using namespace metro;\n'
        if "main(" in block:
            source = block
        elif re.search(r"^(template|[A-Za-z].*\)\s*\{)\s*$", body, re.M):
            source = prefix + body + "\nint main() {}\n"
        else:
            source = prefix + "int main() {\n" + body + "\n}\n"
        stem = re.sub(r"\W", "_", name) + f"_{i}"
        (out / f"{stem}.cpp").write_text(source)
        n += 1
print(f"{n} snippets")
PY
status=0
for f in "$work"/*.cpp; do
  if ! g++ -std=c++20 -fsyntax-only -fopenmp -Wall -Wextra -Werror -Wno-unused-variable -Wno-unused-but-set-variable \
      -Iinclude -I/usr/include/eigen3 -I/usr/include/stb "$f" 2>"$f.log"; then
    echo "snippet does not compile: $(basename "$f")"; head -20 "$f.log"; status=1
  fi
done
exit $status
