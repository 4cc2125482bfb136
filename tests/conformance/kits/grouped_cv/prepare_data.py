"""Make this kit's small data: 240 training and 100 test rows."""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.RandomState(1006)
def table(n):
    site = rng.randint(0, 9, n)
    rain = rng.gamma(2.0, 20.0, n)
    return pd.DataFrame({'site': site, 'rain': rain, 'soil': rng.choice(['clay', 'sand'], n),
                         'yield': 2 + 0.05 * rain + 0.3 * site + rng.normal(0, 0.5, n)})


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data').mkdir(exist_ok=True)
    table(240).to_csv(kit / 'data' / 'train.csv', index=False)
    table(100).to_csv(kit / 'data' / 'test.csv', index=False)
