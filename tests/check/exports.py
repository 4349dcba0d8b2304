#!/usr/bin/env python3
"""libtern.so exports exactly the public API: the functions defined in its
dynamic symbol table (nm -D --defined-only, types T/W/i) must be the functions
declared with TERN_API in include/tern.h and include/tern/*.h, no more (an
internal that lost -fvisibility=hidden, a tern__ name made public by mistake)
and no fewer (a declared function nobody defined, or defined static).
Exported data symbols are reported too: the API exports functions only.

Usage: exports.py --lib path/to/libtern.so --include path/to/include"""
import argparse
import os
import re
import subprocess
import sys

# symbols the linker itself defines in every shared object
LINKER_SYMBOLS = {"_init", "_fini", "_edata", "_end", "__bss_start"}
FUNCTION_TYPES = {"T", "W", "i"}


def strip_comments(text):
    # keep the newlines so line numbers in the report stay right
    text = re.sub(r"/\*.*?\*/", lambda m: " " + "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def declared_functions(include_dir):
    """name -> 'file:line' for every TERN_API function declaration."""
    headers = []
    for root, _dirs, files in os.walk(include_dir):
        headers += [os.path.join(root, f) for f in files if f.endswith(".h")]
    found, problems = {}, []
    for path in sorted(headers):
        with open(path, encoding="utf-8") as f:
            text = strip_comments(f.read())
        for m in re.finditer(r"\bTERN_API\b", text):
            line = text.count("\n", 0, m.start()) + 1
            where = "%s:%d" % (os.path.relpath(path, include_dir), line)
            # the declaration runs to the first ';' or '{'; a function's name
            # is the identifier right before its first '('
            rest = text[m.end():]
            end = re.search(r"[;{]", rest)
            decl = rest[: end.start() if end else len(rest)]
            if text[text.rfind("\n", 0, m.start()) + 1: m.start()].lstrip().startswith("#"):
                continue  # a preprocessor line: the macro's own definition in api.h
            name = re.search(r"([A-Za-z_]\w*)\s*\(", decl)
            if not name:
                problems.append("%s: TERN_API on something that is not a function: %s"
                                % (where, " ".join(decl.split())))
                continue
            found[name.group(1)] = where
    return found, problems


def exported_symbols(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    functions, data = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        kind, name = parts[-2], parts[-1].split("@")[0]
        if name in LINKER_SYMBOLS:
            continue
        (functions if kind in FUNCTION_TYPES else data).add(name)
    return functions, data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--include", required=True)
    args = ap.parse_args()

    declared, problems = declared_functions(args.include)
    functions, data = exported_symbols(args.lib)
    if not declared:
        problems.append("no TERN_API declaration found under %s" % args.include)
    for name in sorted(functions - set(declared)):
        problems.append("exported but not declared TERN_API: %s" % name)
    for name in sorted(set(declared) - functions):
        problems.append("declared TERN_API (%s) but not exported: %s" % (declared[name], name))
    for name in sorted(data):
        problems.append("data symbol exported (the API exports functions only): %s" % name)

    if problems:
        print("%s vs TERN_API in %s: %d difference(s)" % (args.lib, args.include, len(problems)))
        for p in problems:
            print("  " + p)
        return 1
    print("%d functions exported, exactly the TERN_API declarations" % len(declared))
    return 0


if __name__ == "__main__":
    sys.exit(main())
