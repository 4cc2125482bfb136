"""Make this kit's small data: 240 training and 100 test rows."""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.RandomState(1000)
labels = np.array(['alpha', 'beta', 'gamma'])
def table(n):
    y = rng.randint(0, 3, n)
    colour = np.where(rng.rand(n) < 0.7, np.array(['red', 'green', 'blue'])[y],
                      rng.choice(['red', 'green', 'blue'], n))
    return pd.DataFrame({'x1': y + rng.normal(0, 1.0, n), 'x2': rng.normal(0, 1, n),
                         'colour': colour, 'species': labels[y]})


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data').mkdir(exist_ok=True)
    table(240).to_csv(kit / 'data' / 'train.csv', index=False)
    table(100).to_csv(kit / 'data' / 'test.csv', index=False)
