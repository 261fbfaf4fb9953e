"""Which settings (environment variables) each binary reads, found by scanning the Rust sources.

Every setting is read in one of these ways (look at core/src/env.rs and host/src/lib.rs):

- a method of `orders_core::env::Env` whose first parameter is the name (`string`, `required`,
  `parse`, `ranged`, `seconds`: the list is read from core/src/env.rs, so a new reader method is
  picked up), called on a variable bound to `Env::new(..)` or a parameter typed `&Env`;
- `std::env::var` / `std::env::var_os` with a literal name;
- a closure that forwards its parameter to one of the above (host/src/lib.rs's `var` and
  `number`), called with a literal name;
- an implicit read by a library, listed in IMPLICIT (tracing's EnvFilter reads RUST_LOG).

Test code (`#[cfg(test)]` items) is skipped. Anything the scanner cannot resolve to a literal name
(a reader called with a variable, `std::env::vars()`, an Env bound some other way) is reported as
an error instead of being skipped, so a new way of reading settings fails the contract test until
the scanner learns it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Source folder -> binaries that link that code. Names read in the shared crates count for every
# binary that links them; contract.py lists the exceptions (names a binary links but never uses).
SOURCES: dict[str, set[str]] = {
    "core/src": {"handler", "hub", "functions-host"},
    "telemetry/src": {"handler", "hub", "functions-host"},
    "auth/src": {"handler", "hub", "functions-host"},
    "adapters/src": {"handler", "hub", "functions-host"},
    # The queue adapters: only intake (the handler, also embedded in the local host) opens queues;
    # the hub links orders-adapters for the system of record and Redis, never for a queue.
    "adapters/src/servicebus": {"handler", "functions-host"},
    "adapters/src/rabbitmq": {"handler", "functions-host"},
    "functions/src": {"handler", "functions-host"},
    "host/src": {"functions-host"},
    "signalr-hub/src": {"hub"},
}

# Workspace members that no deployed binary links (every other member must be in SOURCES).
NOT_DEPLOYED = {
    "tests/e2e": "end-to-end test harness",
    "tests/support": "fixtures shared by the test suites",
    "tools/bench": "benchmark load generator",
    "tools/hub-bench": "hub benchmark",
}

# Reads done inside libraries, by call pattern -> setting names.
IMPLICIT: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(r"\bEnvFilter\s*::\s*(?:try_)?from_default_env\s*\("), ("RUST_LOG",)),
]

# Runtime reads the scanner refuses to guess about.
OPAQUE = re.compile(r"\b(?:std\s*::\s*)?env\s*::\s*(?:vars|vars_os)\s*\(")


@dataclass
class Read:
    name: str
    file: str
    line: int


@dataclass
class ScanResult:
    reads: list[Read] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def names_for(self, binary: str) -> set[str]:
        return {r.name for r in self.reads if binary in binaries_of(r.file)}


def binaries_of(rel: str) -> set[str]:
    """The binaries linking a source file: the longest SOURCES prefix decides."""
    best = max((p for p in SOURCES if rel.startswith(p + "/")), key=len, default=None)
    return SOURCES[best] if best else set()


# --- a small Rust lexer: blank out comments and string contents so structure can be matched ------


def mask(src: str) -> str:
    """Same length as `src`; comments become spaces (newlines kept), string and char literal
    contents become 'x', so braces, pipes and semicolons inside them don't count."""
    out = list(src)
    i, n = 0, len(src)

    def blank(a: int, b: int, ch: str) -> None:
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = ch

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            blank(i, j, " ")
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j, " ")
            i = j
        elif (m := re.compile(r'b?r(#*)"').match(src, i)) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            close = '"' + m.group(1)
            j = src.find(close, m.end())
            j = n if j < 0 else j
            blank(m.end(), j, "x")
            i = j + len(close)
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            blank(i + 1, j, "x")
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}', '{') or a lifetime ('a).
            m = re.compile(r"'(?:\\(?:u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^\\'\n])'").match(src, i)
            if m:
                blank(i + 1, m.end() - 1, "x")
                i = m.end()
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


def strip_cfg_test(src: str, masked: str) -> tuple[str, str, list[str]]:
    """Blank every `#[cfg(test)]` item; return the sources and the names of `#[cfg(test)] mod x;`
    file modules (whose files are test-only)."""
    test_mods = []
    out_src, out_masked = list(src), list(masked)
    for m in re.finditer(r"#\[cfg\(test\)\]", masked):
        # The item: up to the matching close brace of its first block, or a `;` before any `{`.
        j = m.end()
        while j < len(masked) and masked[j] not in "{;":
            j += 1
        if j >= len(masked):
            continue
        if masked[j] == ";":
            fm = re.search(r"\bmod\s+(\w+)\s*$", masked[m.end():j])
            if fm:
                test_mods.append(fm.group(1))
            end = j + 1
        else:
            depth, k = 0, j
            while k < len(masked):
                if masked[k] == "{":
                    depth += 1
                elif masked[k] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            end = k + 1
        for k in range(m.start(), min(end, len(src))):
            if src[k] != "\n":
                out_src[k] = " "
                out_masked[k] = " "
    return "".join(out_src), "".join(out_masked), test_mods


LITERAL = re.compile(r'\s*"((?:[^"\\]|\\.)*)"')
IDENT = re.compile(r"\s*([A-Za-z_]\w*)\s*[,)]")


def line_of(src: str, pos: int) -> int:
    return src.count("\n", 0, pos) + 1


def enclosing_closure(masked: str, pos: int) -> tuple[str | None, list[str]] | None:
    """The closure whose body contains `pos`, if its header `|params|` is in the same statement:
    (name it is bound to with `let`, or None; its parameter names)."""
    best = None
    for m in re.finditer(r"(?:let\s+(\w+)\s*=\s*)?(?:move\s+)?\|([^|]*)\|", masked[max(0, pos - 600):pos]):
        start = max(0, pos - 600) + m.end()
        between = masked[start:pos]
        depth, ok = 0, True
        for ch in between:
            if ch in "{(":
                depth += 1
            elif ch in "})":
                depth -= 1
                if depth < 0:
                    ok = False
                    break
            elif ch == ";" and depth == 0:
                ok = False
                break
        if ok:
            params = [p.split(":")[0].strip() for p in m.group(2).split(",") if p.strip()]
            best = (m.group(1), params)
    return best


def env_reader_methods() -> set[str]:
    text = (ROOT / "core/src/env.rs").read_text()
    names = set(re.findall(r"pub\s+fn\s+(\w+)\s*(?:<[^>]*>)?\s*\(\s*&self\s*,\s*name\s*:", text))
    if not names:
        raise RuntimeError("core/src/env.rs: found no Env reader methods (fn x(&self, name: ...))")
    return names


def scan_text(rel: str, src: str, methods: set[str], result: ScanResult) -> None:
    masked = mask(src)
    src, masked, _ = strip_cfg_test(src, masked)

    # `const NAME: &str = "...";` in this file: a reader may be called with NAME.
    consts = {
        m.group(1): m.group(2)
        for m in re.finditer(r'\bconst\s+(\w+)\s*:\s*&(?:\'static\s+)?str\s*=\s*"((?:[^"\\]|\\.)*)"\s*;', src)
    }

    def literal_or_const(pos: int) -> str | None:
        lit = LITERAL.match(src, pos)
        if lit:
            return lit.group(1)
        ident = IDENT.match(src, pos)
        if ident and ident.group(1) in consts:
            return consts[ident.group(1)]
        return None

    def add(name: str, pos: int) -> None:
        result.reads.append(Read(name, rel, line_of(src, pos)))

    def error(pos: int, what: str) -> None:
        result.errors.append(f"{rel}:{line_of(src, pos)}: {what}")

    # Env values: `let env = Env::new(..)` and parameters `env: &Env<'_>`.
    env_vars = set(re.findall(r"\blet\s+(?:mut\s+)?(\w+)\s*(?::[^=]*)?=\s*Env\s*::\s*new\s*\(", masked))
    env_vars |= set(re.findall(r"\b(\w+)\s*:\s*&\s*(?:'\w+\s+)?(?:orders_core\s*::\s*env\s*::\s*)?Env\b", masked))
    for m in re.finditer(r"\bEnv\s*::\s*new\s*\(", masked):
        before = masked[max(0, m.start() - 200):m.start()]
        if not re.search(r"\blet\s+(?:mut\s+)?\w+\s*(?::[^=;]*)?=\s*$", before) and not re.search(r"from_env\s*\(\s*&\s*$", before):
            error(m.start(), "Env::new(..) not bound with `let` nor passed straight to a from_env(&..): the scanner cannot follow it")
    for var in sorted(env_vars):
        for m in re.finditer(rf"(?<![\w.]){re.escape(var)}\s*\.\s*(\w+)\s*(?:::\s*<[^()]*?>)?\s*\(", masked):
            if m.group(1) not in methods:
                continue
            name = literal_or_const(m.end())
            if name is not None:
                add(name, m.start())
            else:
                error(m.start(), f"{var}.{m.group(1)}(..) with a name that is neither a string literal nor a const of this file")

    # std::env::var / var_os, and closures forwarding their parameter to a reader.
    readers: set[str] = set()
    pending = [(m, "std") for m in re.finditer(r"\b(?:std\s*::\s*)?env\s*::\s*(?:var|var_os)\s*\(", masked)]
    seen_closure_calls: set[int] = set()
    while pending:
        m, kind = pending.pop()
        name = literal_or_const(m.end())
        if name is not None:
            add(name, m.start())
            continue
        ident = IDENT.match(src, m.end())
        closure = enclosing_closure(masked, m.start())
        if ident and closure and ident.group(1) in closure[1]:
            bound = closure[0]
            if bound and bound not in readers:
                readers.add(bound)
                for c in re.finditer(rf"(?<![\w.:]){re.escape(bound)}\s*\(", masked):
                    if c.start() not in seen_closure_calls:
                        seen_closure_calls.add(c.start())
                        pending.append((c, bound))
            # Unbound: a lookup closure handed to Env::new / from_lookup; the Env calls name the settings.
            continue
        error(m.start(), f"{kind}(..) read with a name that is not a string literal")

    for pattern, names in IMPLICIT:
        for m in pattern.finditer(masked):
            for name in names:
                add(name, m.start())
    for m in OPAQUE.finditer(masked):
        error(m.start(), "std::env::vars(): reads every variable, the scanner cannot tell which")


def workspace_members(root: Path = ROOT) -> list[str]:
    text = (root / "Cargo.toml").read_text()
    m = re.search(r"^members\s*=\s*\[(.*?)\]", text, re.M | re.S)
    if not m:
        raise RuntimeError("Cargo.toml: no [workspace] members list")
    return re.findall(r'"([^"]+)"', m.group(1))


def scan(root: Path = ROOT) -> ScanResult:
    result = ScanResult()
    methods = env_reader_methods()
    for member in workspace_members(root):
        if f"{member}/src" not in SOURCES and member not in NOT_DEPLOYED:
            result.errors.append(
                f"workspace member {member}: not scanned; add {member}/src to settings_scan.SOURCES "
                "(with the binaries that link it) or to NOT_DEPLOYED"
            )
    for prefix in SOURCES:
        base = root / prefix
        if not base.is_dir():
            result.errors.append(f"{prefix}: source folder missing")
            continue
        test_only: set[Path] = set()
        files = sorted(base.rglob("*.rs"))
        for path in files:
            src = path.read_text()
            _, _, mods = strip_cfg_test(src, mask(src))
            for mod in mods:
                here = path.parent if path.name in ("mod.rs", "lib.rs", "main.rs") else path.parent / path.stem
                test_only |= {here / f"{mod}.rs", here / mod / "mod.rs"}
        for path in files:
            if path in test_only or any(p in test_only for p in path.parents if (p / "mod.rs") in test_only):
                continue
            scan_text(str(path.relative_to(root)), path.read_text(), methods, result)
    return result


if __name__ == "__main__":
    r = scan()
    for b in ("handler", "hub", "functions-host"):
        print(b, sorted(r.names_for(b)))
    for e in r.errors:
        print("ERROR", e)
