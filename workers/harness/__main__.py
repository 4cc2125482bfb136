"""``python -m workers.harness WORKDIR``: run one fold in this process."""
import sys

from workers.harness.run import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
