#!/usr/bin/env python3
"""Import loops between the files of each crate, and lines per file.

A loop is file A naming (through `use` or a path) something in file B, and B, directly or
through other files, naming something in A. `lib.rs`/`mod.rs` re-exports (`pub use`) are the
table of contents and are not counted, nor is anything after `#[cfg(test)]` in a file (unit
tests look at their own module).

    scripts/import-loops.py            # loops per crate (exit 1 if any)
    scripts/import-loops.py --lines    # also the module tree with lines per file
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A path, but not the prefix of a group (`crate::a::{b, c}` names b and c, not a: GROUP).
PATH = re.compile(r"\b(crate|super)((?:::\w+)+)(?!\w|::)")
GROUP = re.compile(r"\b(crate|super)((?:::\w+)*)::\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}", re.S)


def module_of(src: Path, f: Path) -> tuple:
    rel = f.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("lib", "main", "mod"):
        parts = parts[:-1]
    return tuple(parts)


def resolve(modules: dict, here: tuple, is_dir_mod: bool, kind: str, rest: list):
    # `super` in a.rs and in a/mod.rs is a's parent; `self` is the module itself.
    base = {"crate": (), "super": here[:-1], "self": here}[kind]
    names = list(base) + rest
    for n in range(len(names), -1, -1):
        if tuple(names[:n]) in modules:
            return tuple(names[:n])
    return None


def edges_of(modules: dict, mod: tuple, f: Path) -> set:
    text = f.read_text()
    text = text.split("#[cfg(test)]")[0]
    is_toc = f.name in ("lib.rs", "mod.rs")
    lines = [
        l for l in text.splitlines()
        if not l.lstrip().startswith("//")
        and not (is_toc and l.lstrip().startswith(("pub use", "pub(crate) use")))
    ]
    body = "\n".join(lines)
    refs = []
    for kind, prefix, inner in GROUP.findall(body):
        for item in re.split(r",", re.sub(r"\{[^{}]*\}", "", inner)):
            item = item.strip().split(" as ")[0]
            if item and item != "self":
                refs.append((kind, [p for p in prefix.split("::") if p] + item.split("::")))
    for kind, path in PATH.findall(body):
        refs.append((kind, [p for p in path.split("::") if p]))
    # Paths relative to this module: `self::x`, or `x::...` naming a child module `x`.
    for first, path in re.findall(r"(?<![:\w])(self|\w+)((?:::\w+)+)", body):
        parts = [p for p in path.split("::") if p]
        if first == "self":
            refs.append(("self", parts))
        elif mod + (first,) in modules:
            refs.append(("self", [first] + parts))
    out = set()
    for kind, rest in refs:
        target = resolve(modules, mod, f.name == "mod.rs", kind, rest)
        if target is not None and target != mod and target != ():
            out.add(target)
    return out


def cycles(graph: dict) -> list:
    found, index, low, stack, on = [], {}, {}, [], set()
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            strong(v)
    return found


def main() -> int:
    show_lines = "--lines" in sys.argv
    loops = 0
    for src in sorted(ROOT.glob("crates/*/src")):
        crate = src.parent.name
        files = sorted(src.rglob("*.rs"))
        modules = {module_of(src, f): f for f in files}
        graph = {m: edges_of(modules, m, f) for m, f in modules.items()}
        found = cycles(graph)
        loops += len(found)
        total = sum(len(f.read_text().splitlines()) for f in files)
        print(f"{crate}: {len(files)} files, {total} lines, {len(found)} import loop(s)")
        for comp in found:
            print("  loop: " + " <-> ".join("::".join(m) or "lib" for m in comp))
        if show_lines:
            for f in files:
                n = len(f.read_text().splitlines())
                print(f"    {str(f.relative_to(src)):<28} {n:>5}")
    return 1 if loops else 0


if __name__ == "__main__":
    sys.exit(main())
