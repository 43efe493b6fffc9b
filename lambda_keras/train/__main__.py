"""`python -m lambda_keras.train`: the training script."""

import sys

from lambda_keras.train.cli import main

if __name__ == "__main__":
    sys.exit(main())
