"""Mutation score per module, from what `mutmut run` left in mutants/ (a `<module>.py.meta` beside each mutated copy).

  .venv/bin/python bench/mutation_score.py               # after `make mutation`
  .venv/bin/python bench/mutation_score.py --survivors   # and name each surviving mutant (`mutmut show <name>`)

A mutant is killed when a test failed or timed out with it in place. bench/mutation_equivalent.txt lists survivors
that change nothing a caller can observe, each with its reason: they are counted apart and leave the denominator.
So do the mutants this run has not reached yet ("not run"), so that a partial run reads as one.
"""

import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
EQUIVALENT = Path(__file__).resolve().parent / "mutation_equivalent.txt"
COLUMNS = ("mutants", "killed", "survived", "equivalent", "no tests", "not run", "score")


def equivalent_mutants() -> set[str]:
    """Names from bench/mutation_equivalent.txt: the first word of each line, after `#` comments go."""
    if not EQUIVALENT.exists():
        return set()
    lines = (line.partition("#")[0].split() for line in EQUIVALENT.read_text().splitlines())
    return {words[0] for words in lines if words}


def outcome(exit_code: int | None, name: str, equivalent: set[str]) -> str:
    status = status_by_exit_code[exit_code]
    if status in {"killed", "timeout", "caught by type check"}:
        return "killed"
    if status == "not checked":
        return "not run"
    if status == "no tests":
        return "no tests"
    if name in equivalent:
        return "equivalent"
    return "survived"  # and mutmut's "suspicious" and "segfault": no test failed for a reason the mutant caused


def score(counts: Counter[str]) -> str:
    judged = counts["mutants"] - counts["equivalent"] - counts["not run"]
    return f"{100 * counts['killed'] / judged:.1f}%" if judged else "-"


def main() -> int:
    metas = sorted(MUTANTS.rglob("*.py.meta"))
    if not metas:
        print("No mutants/: run `make mutation` first.")
        return 1
    equivalent = equivalent_mutants()
    seen: set[str] = set()
    rows: list[tuple[str, Counter[str]]] = []
    survivors: list[str] = []
    total: Counter[str] = Counter()
    for meta in metas:
        exit_codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        if not exit_codes:
            continue
        counts: Counter[str] = Counter(mutants=len(exit_codes))
        for name, exit_code in exit_codes.items():
            seen.add(name)
            result = outcome(exit_code, name, equivalent)
            counts[result] += 1
            if result == "survived":
                survivors.append(name)
        rows.append((str(meta.relative_to(MUTANTS)).removesuffix(".meta"), counts))
        total.update(counts)
    rows.append(("total", total))

    width = max(len(module) for module, _ in rows)
    print(f"{'module':<{width}}  " + "  ".join(f"{column:>10}" for column in COLUMNS))
    for module, counts in rows:
        cells = [str(counts[column]) for column in COLUMNS[:-1]] + [score(counts)]
        print(f"{module:<{width}}  " + "  ".join(f"{cell:>10}" for cell in cells))

    stale = sorted(equivalent - seen)
    if stale:
        # Mutants are numbered per function: a name that no longer exists means the code moved under the list.
        print(f"\n{len(stale)} names in {EQUIVALENT.name} match no mutant: {', '.join(stale)}")
    if "--survivors" in sys.argv[1:]:
        print("\nSurvivors:")
        for name in sorted(survivors):
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
