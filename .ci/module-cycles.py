#!/usr/bin/env python3
"""Fails when modules of one crate import each other in a circle (a uses b, b uses a, or longer).

Reads every `src/` tree of the workspace: a module is a file (`foo.rs` or `foo/mod.rs`, inline `mod x {}` blocks
belong to their file), an edge is a `crate::`, `super::` or `self::` path in a `use` or in code that names another
module of the same crate. Test modules (`#[cfg(test)]` blocks) are left out: they may reach anywhere.
Usage: python3 .ci/module-cycles.py [crate-src-dir ...]   (default: every crates/*/src and migrations/src)
"""
import pathlib
import re
import sys

PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"\b(crate|super|self)::\{([^;]*?)\}", re.S)


def module_of(src: pathlib.Path, file: pathlib.Path) -> tuple:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_tests(text: str) -> str:
    """Drops `#[cfg(test)] mod ... { ... }` blocks by brace matching."""
    out, i = [], 0
    while True:
        at = text.find("#[cfg(test)]", i)
        if at < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:at])
        brace = text.find("{", at)
        semi = text.find(";", at)
        if semi >= 0 and (brace < 0 or semi < brace):
            i = semi + 1
            continue
        depth, j = 0, brace
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        i = j + 1


def resolve(modules: set, here: tuple, root: str, rest: list) -> tuple | None:
    base = {"crate": (), "self": here, "super": here[:-1]}[root]
    while rest and rest[0] == "super":
        base, rest = base[:-1], rest[1:]
    best = None
    path = base
    if path in modules:
        best = path
    for name in rest:
        path = path + (name,)
        if path in modules:
            best = path
        else:
            break
    return best


def edges_of(src: pathlib.Path) -> dict:
    files = sorted(src.rglob("*.rs"))
    modules = {module_of(src, f) for f in files}
    graph = {}
    for f in files:
        here = module_of(src, f)
        text = re.sub(r"//[^\n]*", "", strip_tests(f.read_text()))
        paths = [(m.group(1), m.group(2).split("::")[1:]) for m in PATH.finditer(text)]
        for m in GROUP.finditer(text):
            for item in re.split(r",", m.group(2)):
                item = item.strip().split(" as ")[0].strip()
                if item and not item.startswith("{"):
                    paths.append((m.group(1), item.replace("{", "").split("::")))
        for root, rest in paths:
            target = resolve(modules, here, root, rest)
            # A module naming its own ancestors (the crate root, its parent) is how children reach shared items.
            if target is None or target == here or here[: len(target)] == target or target[: len(here)] == here:
                continue
            graph.setdefault(here, set()).add(target)
    return graph


def cycles(graph: dict) -> list:
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent
    dirs = [pathlib.Path(d) for d in sys.argv[1:]] or sorted(root.glob("crates/*/src")) + [root / "migrations/src"]
    bad = 0
    for src in dirs:
        for cycle in cycles(edges_of(src)):
            bad += 1
            names = ["::".join(m) or "crate" for m in cycle]
            print(f"{src}: import cycle: {' -> '.join(names)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
