"""What ``make demo`` shows of each provlink command: a few lines, the full output in a file.

Each function takes a command's printed output and returns the lines worth a first look;
``run_demo.py`` writes the full output to ``<dir>/commands.txt``. Pure text in, text out, so
the screen stays short without the commands themselves changing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SHA256 = re.compile(r"sha256:([0-9a-f]{12})[0-9a-f]{52}")
_GIT = re.compile(r"\bgit ([0-9a-f]{12})[0-9a-f]{28}\b")


def shorten(line: str, paths: dict[str, str]) -> str:
    """Digests to their first 12 hex digits, and long path prefixes to their short form."""
    line = _GIT.sub(r"git \1", _SHA256.sub(r"sha256:\1…", line))
    for long, short in paths.items():  # not inside a tracking URI: that is an identity
        line = re.sub(r"(?<!sqlite:///)" + re.escape(long), lambda _, s=short: s, line)
    return line


def trace(out: str) -> list[str]:
    """The chain itself: runs, their parameters, code and MLflow runs, and the datasets they
    read; the registry tags and who ran each step stay in the file."""
    return [line for line in out.splitlines()
            if "registry tag " not in line and "ran by: " not in line]


def diff(out: str) -> list[str]:
    return out.splitlines()


def impact(out: str) -> list[str]:
    """Versions of the file, the jobs and datasets it fed, the model versions to retrain."""
    lines = out.splitlines()
    versions = sum(1 for line in lines if line.startswith(("├─ version", "└─ version")))
    parts: dict[str, list[str]] = {"jobs": [], "datasets": [], "model versions": []}
    section = ""
    for line in lines[1:]:
        head = re.match(r"^[├└]─ (jobs|datasets|model versions)", line)
        if head:
            section = head[1]
            continue
        item = re.match(r"^[│ ]  [├└]─ (.+)", line)
        if item and section:
            parts[section].append(item[1])
    jobs = ", ".join(item.split("  ")[0] for item in parts["jobs"])
    models = "; ".join(re.sub(r"  run \S+", "", item) for item in parts["model versions"])
    return [f"{lines[0]}: {versions} version(s), read by {len(parts['jobs'])} job(s) "
            f"({jobs}), {len(parts['datasets'])} dataset(s) downstream",
            f"retrain: {models or 'no model version'}"]


def coverage(out: str) -> list[str]:
    """The figures in three lines; the gaps by job as one line naming the jobs."""
    lines = out.splitlines()
    figures = {line[:19].strip(): " ".join(line[19:].split()) for line in lines[1:5]}
    gaps = lines.index("gaps by job, worst first:") if "gaps by job, worst first:" in lines \
        else len(lines)
    jobs = [line.strip().split("  ")[0] for line in lines[gaps + 1:]
            if not line.strip().startswith("models:/")]
    untraceable = [line.strip() for line in lines[gaps + 1:]
                   if line.strip().startswith("models:/")]
    audit = " · ".join(f"{name} {figures[name].split(' (')[0]}" for name in
                       ("START + terminal", "inputs + outputs", "ledger checkpoint"))
    return [f"{lines[0]}: traceability {figures['traceability']}",
            f"audit: {audit}; " + lines[5].split(" (`provlink registry sync`")[0],
            *([f"gaps by job ({len(jobs)}): {', '.join(jobs)}"] if jobs else []),
            *(f"untraceable: {line}" for line in untraceable)]


def history(out: str) -> list[str]:
    return out.splitlines()


def evidence(out: str) -> list[str]:
    return [out.split("; check it with")[0]]


def evidence_verify(out: str) -> list[str]:
    """The verdict with the checks that passed, the ledger's proof; any other check in full."""
    lines = out.splitlines()
    passed = [line[5:].split(":")[0] for line in lines if line.startswith("ok   ")]
    ledger = [line.split(": ", 1)[1] for line in lines if line.startswith("ok   ledger")]
    other = [line for line in lines[:-1] if not line.startswith("ok   ")]
    verdict = lines[-1].rsplit(": ", 1)[-1]  # after the bundle's path
    return [f"{verdict} ({', '.join(passed)} ok)", *(f"ledger: {p}" for p in ledger), *other]


def verify(out: str) -> list[str]:
    """The entry count and the verdict (the tree's own lines stay in the file)."""
    lines = out.splitlines()
    entries = next((line.split()[2] for line in lines if "entries " in line), "?")
    checkpoints = next((line.split()[2].rstrip(",") for line in lines
                        if "checkpoints " in line), "?")
    problems = [line.strip(" │") for line in lines if "BROKEN" in line]
    verdict = lines[-1].removeprefix("└─ ")
    return [*problems, f"{entries} entries, {checkpoints} checkpoints: {verdict}"]


SUMMARIES: dict[str, Callable[[str], list[str]]] = {
    "trace": trace, "diff": diff, "impact": impact, "coverage": coverage, "history": history,
    "evidence": evidence, "evidence verify": evidence_verify, "verify": verify,
}
