"""Make this kit's small data: 40 training and 15 test events of 2 or 3
straight tracks of hits each; signal events have three tracks."""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.RandomState(77)


def events(n, first_id):
    rows = []
    for event_id in range(first_id, first_id + n):
        n_tracks = rng.choice([2, 3])
        for track_id in range(n_tracks):
            angle = rng.uniform(0, np.pi)
            for radius in np.linspace(1, 5, 6):
                rows.append((event_id, radius * np.cos(angle) + rng.normal(0, 0.05),
                             radius * np.sin(angle) + rng.normal(0, 0.05), track_id,
                             int(n_tracks == 3)))
    return pd.DataFrame(rows, columns=['event_id', 'x', 'y', 'track_id', 'signal'])


if __name__ == '__main__':
    kit = Path(__file__).resolve().parent
    (kit / 'data').mkdir(exist_ok=True)
    events(40, 0).to_csv(kit / 'data' / 'train.csv', index=False)
    events(15, 1000).to_csv(kit / 'data' / 'test.csv', index=False)
