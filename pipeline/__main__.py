"""``python -m pipeline --config FILE [Beam options]``."""
import sys

from pipeline.run import run


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
