"""The ``fastloss`` command: ``fastloss bench ...`` (also ``python -m fastloss bench``),
``fastloss eval ...`` and ``fastloss backends``."""
import sys

USAGE = """usage: fastloss <command> [options]
       fastloss --version

commands:
  bench      time fastloss's backends against torch, JAX, scikit-learn and NumPy
             (fastloss bench --quick for a one-minute run; fastloss bench --help)
  eval       score a large evaluation set from .npy files, streamed in chunks
             (fastloss eval cross_entropy --input X.npy --target Y.npy)
  backends   show which backends loaded, and why any did not"""


def main(argv=None):
    """Run the ``fastloss`` command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from ._version import __version__
        print(f"fastloss {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command == "bench":
        from ._bench.cli import main as bench
        return bench(rest)
    if command == "eval":
        from ._eval import main as evaluate
        return evaluate(rest)
    if command == "backends":
        import fastloss
        fastloss.show_backends()
        return 0
    print(f"fastloss: error: unknown command {command!r} (choose from bench, eval, backends)",
          file=sys.stderr)
    return 2


def _run():
    try:
        return main()
    except BrokenPipeError:     # `fastloss bench --list | head`: the reader left, not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(_run())
