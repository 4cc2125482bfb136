"""Make this kit's small data: 240 training and 100 test rows."""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.RandomState(1003)
def table(n):
    shape = rng.choice(['circle', 'square', 'star'], n)
    size = rng.choice(['s', 'm', 'l'], n)
    p = 0.15 + 0.6 * (shape == 'star') + 0.2 * (size == 'l')
    answer = np.where(rng.rand(n) < p, 'yes', 'no')
    return pd.DataFrame({'shape': shape, 'size': size, 'weight': rng.normal(0, 1, n),
                         'answer': answer})


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data').mkdir(exist_ok=True)
    table(240).to_csv(kit / 'data' / 'train.csv', index=False)
    table(100).to_csv(kit / 'data' / 'test.csv', index=False)
