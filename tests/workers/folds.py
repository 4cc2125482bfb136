"""Laying out a fold's work dir in tests, as a runner would: a ticket naming
a prepared problem's inputs and submission files by hash, and the local
files holding them."""
import hashlib
from pathlib import Path

from datarun import ramp_kits
from datarun.contract import FoldTicket
from workers.fold_io import prepare_workdir


def fold_ticket(prepared: Path, files: dict[str, bytes], *, fold_index: int = 0,
                **fields) -> FoldTicket:
    values = dict(fold_run_id=1, evaluation_id=1, fold_index=fold_index, attempt=1,
                  inputs=ramp_kits.fold_input_digests(prepared, fold_index),
                  files={name: hashlib.sha256(data).hexdigest()
                         for name, data in files.items()},
                  limits={}, n_train=120, n_test=30, prediction_shape=[3])
    return FoldTicket(**{**values, **fields})


def lay_out(ticket: FoldTicket, workdir: Path, prepared: Path, files: dict[str, bytes], *,
            link_inputs: bool = False) -> None:
    """``prepare_workdir`` with the inputs taken from ``prepared`` and the
    submission files written next to the work dir."""
    source = workdir.parent / f"{workdir.name}-submission"
    source.mkdir(exist_ok=True)
    for name, data in files.items():
        (source / name).write_bytes(data)
    prepare_workdir(ticket, workdir,
                    inputs=ramp_kits.fold_inputs(prepared, ticket.fold_index),
                    files={name: source / name for name in ticket.files},
                    link_inputs=link_inputs)
