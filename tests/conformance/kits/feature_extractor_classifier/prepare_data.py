"""Make this kit's small data: 240 training and 100 test rows."""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.RandomState(1005)
def table(n):
    k = rng.randint(0, 3, n)
    words = np.array(['apple pie', 'blue sky', 'cold rain'])
    text = np.where(rng.rand(n) < 0.6, words[k], rng.choice(words, n))
    return pd.DataFrame({'text': text, 'length': k * 2.0 + rng.normal(0, 1.5, n),
                         'kind': np.array(['a', 'b', 'c'])[k]})


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data').mkdir(exist_ok=True)
    table(240).to_csv(kit / 'data' / 'train.csv', index=False)
    table(100).to_csv(kit / 'data' / 'test.csv', index=False)
