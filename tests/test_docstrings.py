"""Every example in fastloss's docstrings runs, on every backend that loaded, and prints
what the docstring says: one test per docstring and backend.

Floats in an example's expected output are compared to the precision they are written
with (pytest's NUMBER option, reimplemented here so that the examples also hold under a
plain ``python -m doctest``-style runner), so ``0.41703`` matches ``0.417030001``."""
import doctest
import importlib
import pkgutil
import re

import pytest

import fastloss
from fastloss import _dispatch
from fastloss._registry import LOSSES

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# The modules that import only with the C module built, or with an optional framework
# installed (the bridges): their docstrings are not collected without it.
OPTIONAL = ("fastloss._cffi", "fastloss._fastloss_c", "fastloss.torch", "fastloss.jax")


def _modules():
    names = ["fastloss"] + [m.name for m in pkgutil.walk_packages(fastloss.__path__,
                                                                  "fastloss.")]
    out = []
    for name in names:
        try:
            out.append(importlib.import_module(name))
        except ImportError:
            if name not in OPTIONAL:
                raise
    return out


def _docstring_tests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    seen = {}
    for module in _modules():
        for test in finder.find(module, module.__name__):
            if test.examples and test.name not in seen:
                seen[test.name] = test
    return seen


DOCTESTS = _docstring_tests()
BACKENDS = [b for b in _dispatch.backend_names() if _dispatch._BACKENDS[b].available]

# A float written with a decimal point or an exponent: the precision it is written with.
_FLOAT = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|"
                    r"(?<![\w.])[-+]?\d+[eE][-+]?\d+")


class NumberChecker(doctest.OutputChecker):
    """doctest's checker, plus: a float in the expected output matches a float in the
    output that rounds to it at the written precision (pytest's NUMBER)."""

    def check_output(self, want, got, optionflags):
        if super().check_output(want, got, optionflags):
            return True
        wants, gots = list(_FLOAT.finditer(want)), list(_FLOAT.finditer(got))
        if not wants or len(wants) != len(gots):
            return False
        pieces, last = [], 0
        for w, g in zip(wants, gots):
            text = w.group()
            mantissa, _, exponent = text.lower().partition("e")
            decimals = len(mantissa.partition(".")[2])
            tol = 0.5 * 10.0 ** (-decimals + (int(exponent) if exponent else 0))
            if abs(float(g.group()) - float(text)) <= tol * (1 + 1e-12):
                pieces += [got[last:g.start()], text]
            else:
                pieces += [got[last:g.end()]]
            last = g.end()
        return super().check_output(want, "".join(pieces) + got[last:], optionflags)


def test_number_checker():
    check = NumberChecker().check_output
    assert check("0.41703\n", "0.417030001\n", 0)
    assert check("array([0.3, 0. , 0.7])\n", "array([0.30000001, 0.        , 0.7])\n",
                 doctest.NORMALIZE_WHITESPACE)
    assert check("1e-05\n", "1.0000001e-05\n", 0)
    assert not check("1.0625\n", "2.0625\n", 0)
    assert not check("0.417\n", "0.418\n", 0)
    assert not check("3\n", "4\n", 0)


def test_docstrings_were_found():
    names = set(DOCTESTS)
    assert "fastloss._grad.value_and_grad" in names and "fastloss.losses" in names
    assert len(names) >= len(LOSSES) + 4


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_has_an_example(name):
    """A short example in every public loss's docstring (run by the test below)."""
    fn = LOSSES[name].function
    tests = doctest.DocTestFinder().find(fn, name)
    assert tests and tests[0].examples, f"{name}'s docstring has no example"
    assert "Examples\n" in fn.__doc__, f"{name}'s docstring has no Examples section"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(DOCTESTS))
def test_docstring_examples(name, backend):
    test = DOCTESTS[name]
    test.globs = dict(test.globs)      # each run starts from the module's namespace
    runner = doctest.DocTestRunner(checker=NumberChecker(), optionflags=OPTIONS)
    report = []
    with fastloss.use_backend(backend):
        result = runner.run(test, out=report.append, clear_globs=True)
    assert result.failed == 0, "".join(report)
