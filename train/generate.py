"""``python -m train.generate``: one question about your own image files (RadFM's quick demo); the work is in
``evaluation.generate``."""

import sys

from evaluation.generate import main

if __name__ == "__main__":
    sys.exit(main())
