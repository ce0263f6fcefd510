"""``python -m pipeline --config FILE [Beam options]`` (``--help`` for more)."""
import sys

from pipeline.import_noise import drop_import_noise

drop_import_noise()  # before pipeline.run imports Beam

from pipeline.run import run  # noqa: E402


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
