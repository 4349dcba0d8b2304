#!/usr/bin/env python3
"""Compiles (and links) every ```c block of README.md against libtern, so the
README never shows code that does not build. A block with main() is a whole
program; a block of top-level definitions gets an empty main(); a block of
statements is wrapped in main() (with a `serve_file` handler declared)."""
import os, re, subprocess, sys, tempfile

def main():
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    readme, include, lib = args["--readme"], args["--include"], args["--lib"]
    cc = args.get("--cc", "cc")
    blocks = re.findall(r"```c\n(.*?)```", open(readme).read(), re.S)
    if not blocks:
        print("no C blocks in README"); return 1
    failed = 0
    for i, code in enumerate(blocks):
        if "int main" in code:
            src = code
        elif re.search(r"^static ", code, re.M):
            src = "#include <tern.h>\n#include <stdio.h>\n" + code + "\nint main(void) { return 0; }\n"
        else:
            src = ("#include <tern.h>\nstatic void serve_file(tern_ctx *ctx) { (void)ctx; }\n"
                   "int main(void) {\n" + code + "\nreturn 0;\n}\n")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, f"readme_{i}.c")
            open(path, "w").write(src)
            cmd = [cc, "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function",
                   "-Wno-unused-parameter", "-I", include, path, lib, "-lpthread", "-lsqlite3", "-lssl", "-lcrypto", "-lz",
                   "-o", os.path.join(d, "a.out")] + args.get("--flags", "").split()
            r = subprocess.run(cmd, capture_output=True, text=True)
            status = "ok" if r.returncode == 0 else "FAILED"
            print(f"README block {i + 1}: {status}")
            if r.returncode:
                failed += 1
                print(src); print(r.stderr)
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
