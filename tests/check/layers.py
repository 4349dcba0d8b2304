#!/usr/bin/env python3
"""A lower layer never includes a header from a higher one (STYLE.md rule 11,
ARCHITECTURE.md "Layers"). Every #include in src/, include/ and examples/ is
resolved the way the compiler would find it (the including file's folder,
then src/, then include/) and the layer it lands in is checked against the
table below. Public headers (include/) may be included from anywhere; the
public headers and examples/ may include nothing from src/.

A new folder under src/ fails the check until it is given a row here.

Usage: layers.py --root path/to/tern"""
import argparse
import os
import re
import sys

# layer -> the layers its files may include (besides the public include/)
ALLOWED = {
    "rt": {"rt"},
    "transport": {"rt", "transport"},
    "http": {"rt", "transport", "http"},
    "metrics": {"rt", "metrics"},
    "server": {"rt", "transport", "http", "metrics", "server"},
    "client": {"rt", "transport", "http", "metrics", "client"},
    "pg": {"pg"},  # public API only (tern_wait_fd, tern_pool, tern_offload)
    "middleware": {"rt", "transport", "http", "metrics", "server", "middleware"},
}
PUBLIC = "include/"

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
SOURCE_EXT = (".c", ".h", ".S", ".inc")


def sources(top):
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(SOURCE_EXT):
                yield os.path.join(root, f)


def strip_comments(text):
    # an #include inside a comment is not an include; keep the newlines so
    # line numbers stay right
    return re.sub(r"/\*.*?\*/", lambda m: " " + "\n" * m.group(0).count("\n"), text, flags=re.S)


def resolve(root, including, quote, name):
    """The included file's path relative to root, or None (a system header)."""
    dirs = [os.path.dirname(including)] if quote == '"' else []
    dirs += [os.path.join(root, "src"), os.path.join(root, "include")]
    for d in dirs:
        p = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(p):
            return os.path.relpath(p, root)
    # not found: still catch "server/x.h" written against a missing file
    first = name.split("/")[0]
    if first in ALLOWED and "/" in name:
        return "src/" + name
    return None


def layer_of(rel):
    """'rt', 'http', ... for src/<layer>/..., 'public' for include/, else None."""
    parts = rel.split(os.sep)
    if parts[0] == "include":
        return "public"
    if parts[0] == "src" and len(parts) > 2:
        return parts[1]
    if parts[0] == "src":
        return "src"  # a file directly in src/: belongs to no layer
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True, help="the source tree (holds src/, include/)")
    args = ap.parse_args()
    root = os.path.abspath(args.root)

    problems = []
    checked = 0
    for top in ("src", "include", "examples"):
        for path in sources(os.path.join(root, top)):
            rel = os.path.relpath(path, root)
            own = layer_of(rel) if top != "examples" else "examples"
            if own not in ALLOWED and own not in ("public", "examples"):
                problems.append("%s: not in any layer (give src/%s a row in tests/check/layers.py)"
                                % (rel, rel.split(os.sep)[1]))
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                text = strip_comments(f.read())
            for m in INCLUDE.finditer(text):
                quote, name = m.group(1), m.group(2)
                target = resolve(root, path, quote, name)
                if target is None:
                    continue
                checked += 1
                where = "%s:%d: #include %s%s%s" % (rel, text.count("\n", 0, m.start()) + 1,
                                                   quote, name, '"' if quote == '"' else ">")
                to = layer_of(target)
                if to == "public" or to is None:
                    continue  # the public API, or a file outside src/ (examples' own)
                if own in ("public", "examples"):
                    problems.append("%s: %s reaches into %s (public API only)"
                                    % (where, "a public header" if own == "public"
                                       else "an example", target))
                elif to not in ALLOWED[own]:
                    problems.append("%s: %s may not include %s (layer %s is not below it)"
                                    % (where, own, target, to))

    if problems:
        print("layer violations: %d" % len(problems))
        for p in problems:
            print("  " + p)
        return 1
    print("%d includes checked, every one points down or sideways within its layer" % checked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
