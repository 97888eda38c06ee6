"""Rewrite README.md's benchmark section (between <!-- bench:start --> and
<!-- bench:end -->) from the committed runs: `python bench/update_readme.py`.

The section is the headline run (bench/results/targets.json) and the run of every other
loss (bench/results/others.json), each rendered by fastloss._bench.report.markdown with
its machine, versions and exact command. The plots stay out of the README: it is also the
package's description (PyPI, the sdist), where a link into bench/ would be broken."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
from fastloss._bench import report  # noqa: E402

INTRO = ("Two committed runs on the 2-core development machine, both at 2 threads, float32, "
         "\"mean\" reduction (reproduce with the commands in each footnote; "
         "`bench/README.md` explains every column). The issue targets are summarized in "
         "`bench/RESULTS.md`; `bench/results/targets_numpy.md` has the headline cases "
         "again with fastloss's NumPy backend timed too. Plots of both runs are in the "
         "source repository, next to their data: `bench/results/targets.png` and "
         "`bench/results/others.png`.")
PARTS = [("Cross-entropy and the headline cases", "targets"), ("Every other loss", "others")]


def main():
    section = [INTRO, ""]
    for title, name in PARTS:
        with open(os.path.join(HERE, "results", f"{name}.json"), encoding="utf-8") as f:
            doc = json.load(f)
        section += [f"### {title}", "", report.markdown(doc)]
    report.update_readme(os.path.join(ROOT, "README.md"), "\n".join(section))


if __name__ == "__main__":
    main()
