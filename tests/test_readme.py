"""The README's table of losses is the registry's: `python tests/test_readme.py` rewrites it."""
import os
import re
import sys

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
START, END = "<!-- losses:start -->", "<!-- losses:end -->"


def losses_table():
    from fastloss._registry import LOSSES
    rows = [f"| `{name}` | `{spec.class_name}` | {', '.join(f'`{a}`' for a in spec.differentiable)} |"
            for name, spec in LOSSES.items()]
    return "\n".join(rows)


def current():
    text = open(README).read()
    m = re.search(re.escape(START) + r"\n(.*?)\n?" + re.escape(END), text, re.S)
    return text, (m.group(1).strip() if m else None)


def test_readme_lists_every_loss():
    _, table = current()
    assert table == losses_table(), "README's loss table is stale: run python tests/test_readme.py"


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(README))
    text, _ = current()
    start, end = text.index(START) + len(START), text.index(END)
    open(README, "w").write(text[:start] + "\n" + losses_table() + "\n" + text[end:])
