"""Make this kit's small data: 200 training and 80 test rows, a text column
and text labels."""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.RandomState(1013)


def table(n):
    X = rng.normal(0, 1, (n, 3))
    city = rng.choice(['lyon', 'paris', 'nantes'], size=n)
    score = X[:, 0] - 0.7 * X[:, 2] + (city == 'paris') + rng.normal(0, 0.8, n)
    out = pd.DataFrame(X, columns=['x0', 'x1', 'x2'])
    out['city'] = city
    out['outcome'] = np.where(score > 0.3, 'yes', 'no')
    return out


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data').mkdir(exist_ok=True)
    table(200).to_csv(kit / 'data' / 'train.csv', index=False)
    table(80).to_csv(kit / 'data' / 'test.csv', index=False)
