"""Make this kit's small data: 240 training and 100 test rows."""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.RandomState(1007)
def table(n):
    day = pd.Timestamp('2023-01-01') + pd.to_timedelta(rng.permutation(n), unit='D')
    lag = rng.normal(50, 10, n)
    return pd.DataFrame({'day': day.strftime('%Y-%m-%d'), 'lag1': lag,
                         'load': 0.8 * lag + 5 * np.sin(day.dayofyear / 9.0)
                         + rng.normal(0, 2, n)})


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data').mkdir(exist_ok=True)
    table(240).to_csv(kit / 'data' / 'train.csv', index=False)
    table(100).to_csv(kit / 'data' / 'test.csv', index=False)
