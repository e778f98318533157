"""The prediction archive's files: one Parquet file per model, UTC day and part, in MLflow.

Each model has one MLflow run tagged ``relearn.retention`` in its experiment; a day's rows go
to ``prediction_archive/<day>/part-NNNN.parquet`` there. The file holds every column of the
log (numbers and booleans typed, the rest as Postgres prints it), the row's feedback (JSON)
and its content digest, so the file alone says which rows, exactly as they were, it stands for.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from relearn.registry import registry_client, tagged_run
from relearn.services import experiment_name
from relearn.store import retention as store
from relearn.store.db import transaction

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import date

    from relearn.services import Services

log = logging.getLogger(__name__)

RUN_TAG = "relearn.retention"
FEEDBACK_COLUMN = "feedback"  # the prediction's feedback rows, a JSON array (or null)
DIGEST_COLUMN = "row_digest"
_TYPES = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), store.TEXT: pa.string()}


class ArchiveError(RuntimeError):
    """An archive file is missing or does not match its record: nothing of it is deleted."""


UNPLACEABLE = "unplaceable"  # the folder of rows whose predicted_at no UTC day can hold


def artifact_path(day: date | None, part: int) -> str:
    folder = UNPLACEABLE if day is None else day.isoformat()
    return f"prediction_archive/{folder}/part-{part:04d}.parquet"


def retention_run(services: Services, model_name: str) -> str:
    """The model's MLflow run holding its archives, created (and ended) on first use."""
    client = registry_client(services.tracking_uri)
    _, run_id, created = tagged_run(
        client,
        experiment_name(model_name),
        RUN_TAG,
        {RUN_TAG: model_name, "relearn.model": model_name},
        run_name=f"{model_name}-prediction-archive",
    )
    if created:
        client.set_terminated(run_id)
    return run_id


def _schema(columns: list[tuple[str, str]]) -> pa.Schema:
    fields = [pa.field(name, _TYPES[kind]) for name, kind in columns]
    extra = [pa.field(FEEDBACK_COLUMN, pa.string()), pa.field(DIGEST_COLUMN, pa.string())]
    return pa.schema([*fields, *extra])


def _csv_reader(path: Path, schema: pa.Schema) -> pacsv.CSVStreamingReader:
    """Postgres' CSV as typed batches: an unquoted empty field is NULL, everything else (also
    "", "NA" or "null") is the value it spells; booleans are t/f."""
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=schema.names),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={f.name: f.type for f in schema},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )


def _lines(values: list[str]) -> bytes:
    """Row digests as the archive digest hashes them: one line each."""
    return "".join(f"{value}\n" for value in values).encode()


def write_day(services: Services, model_name: str, day: date | None, path: Path) -> tuple[int, str]:
    """Export the model's rows of ``day`` (``None``: its unplaceable bucket), in one snapshot,
    to ``path``: (row count, digest). Postgres writes CSV next to it (``COPY``); pyarrow turns
    it into Parquet in bounded batches."""
    csv_path = path.with_suffix(".csv")
    with transaction(services.database_url) as connection:
        columns = store.log_columns(connection)
        with csv_path.open("wb") as out:
            store.export_csv(connection, model_name, day, columns=columns, out=out)
    schema = _schema(columns)
    rows, digest = 0, hashlib.sha256()
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in _csv_reader(csv_path, schema):
            writer.write_batch(batch)
            digest.update(_lines(batch.column(DIGEST_COLUMN).to_pylist()))
            rows += batch.num_rows
    csv_path.unlink()
    return rows, digest.hexdigest()


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def upload(services: Services, mlflow_run_id: str, path: Path, day: date | None, part: int) -> str:
    """Put the file at its place in the run's artifacts; returns its artifact URI."""
    client = registry_client(services.tracking_uri)
    relative = artifact_path(day, part)
    named = path.with_name(Path(relative).name)
    path.rename(named)
    client.log_artifact(mlflow_run_id, str(named), str(Path(relative).parent))
    return f"{client.get_run(mlflow_run_id).info.artifact_uri}/{relative}"


def download_verified(services: Services, archive: store.Archive, tmp: str) -> Path:
    """The archive's file from the artifact store, checked against its record.

    Raises ``ArchiveError`` when it is missing or its bytes, row count or rows' digest differ.
    """
    client = registry_client(services.tracking_uri)
    where = f"{archive.model_name} {archive.day} part {archive.part} ({archive.artifact_uri})"
    try:
        path = Path(
            client.download_artifacts(
                archive.mlflow_run_id, artifact_path(archive.day, archive.part), tmp
            )
        )
    except Exception as error:  # any failure to fetch it means: not verifiably archived
        raise ArchiveError(f"archive {where} cannot be read back: {error}") from error
    if file_sha256(path) != archive.file_sha256:
        raise ArchiveError(f"archive {where}: the stored file's sha256 differs from its record")
    rows, digest = 0, hashlib.sha256()
    for ids, digests in archived_rows(path, 50_000):
        rows += len(ids)
        digest.update(_lines(digests))
    if rows != archive.row_count or digest.hexdigest() != archive.digest:
        raise ArchiveError(
            f"archive {where}: {rows} rows with digest {digest.hexdigest()[:12]}, "
            f"recorded {archive.row_count} with {archive.digest[:12]}"
        )
    return path


def archived_rows(path: Path, batch_size: int) -> Iterator[tuple[list[str], list[str]]]:
    """(prediction ids, row digests) of an archive file, ``batch_size`` at a time."""
    for batch in pq.ParquetFile(path).iter_batches(
        batch_size=batch_size, columns=["prediction_id", DIGEST_COLUMN]
    ):
        yield batch.column(0).to_pylist(), batch.column(1).to_pylist()
