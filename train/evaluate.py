"""``python -m train.evaluate``: evaluate a model on test-split shards (the ``evaluation`` package does the work;
see ``evaluation.cli`` and README "Evaluation")."""

import sys

from evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
