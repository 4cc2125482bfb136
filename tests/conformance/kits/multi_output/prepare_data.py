"""Make this kit's small data: 240 training and 100 test rows."""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.RandomState(1008)
def table(n):
    X = rng.normal(0, 1, (n, 3))
    out = pd.DataFrame(X, columns=['u', 'v', 'w'])
    out['height'] = 2 * X[:, 0] - X[:, 1] + rng.normal(0, 0.3, n)
    out['width'] = X[:, 2] + 0.5 * X[:, 0] + rng.normal(0, 0.3, n)
    return out


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data').mkdir(exist_ok=True)
    table(240).to_csv(kit / 'data' / 'train.csv', index=False)
    table(100).to_csv(kit / 'data' / 'test.csv', index=False)
