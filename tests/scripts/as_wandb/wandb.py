"""On PYTHONPATH, `import wandb` is runlake: how the tests run public scripts unchanged."""

import sys

import runlake

sys.modules[__name__] = runlake
