"""Reclaiming deleted runs (Api `run.delete()`, `Lake.delete_run`), done by compaction.

A deleted run leaves every listing at once, but its rows stay while anything may read them: a
fork of it reads its steps up to the fork point (zero-copy forks share them), and a reader that
listed it before the delete may still be reading it. Its files go once it was deleted more than
`grace` seconds ago and no run that is not deleted (or was deleted within the grace) has it in
its lineage. Removal order: run.json first (the run is gone for every reader from then on),
then its other manifests, its history parts and its id claim (the id is free again). Rows it has
in packs stay in them (a pack is rewritten by nobody); its own parts are the bulk of a run that
was never compacted.
"""

from __future__ import annotations

import os
import time

from ..read.catalog import Catalog
from ..store.storage import Storage

_RECLAIMABLE = """
SELECT r.run_id, r.project
FROM run_meta AS r
WHERE r.deleted_at IS NOT NULL AND r.deleted_at < $cutoff
  AND NOT EXISTS (
    SELECT 1 FROM closure AS c JOIN run_meta AS n ON n.run_id = c.node_run_id
    WHERE c.run_id = r.run_id AND c.node_run_id <> r.run_id
      AND (n.deleted_at IS NULL OR n.deleted_at >= $cutoff)
  )
ORDER BY r.run_id
"""


def reclaim_deleted(storage: Storage, catalog: Catalog, grace: float) -> list[str]:
    """Remove the files of deleted runs nothing reads any more; returns their run ids."""
    catalog.refresh()
    cur = catalog.cursor(with_parts=False)
    try:
        found = cur.execute(_RECLAIMABLE, {"cutoff": time.time() - grace}).fetchall()
    finally:
        cur.close()
    for run_id, project in found:
        storage.remove(storage.paths.meta(project, run_id, "run.json"))  # the switch: gone
        storage.remove_tree(storage.paths.run_dir(project, run_id))
        storage.remove_tree(storage.paths.run_history_dir(project, run_id))
        storage.remove_tree(storage.paths.run_streams_dir(project, run_id))
        claim = storage.paths.id_claim(run_id)
        storage.remove(claim)
        runs_dir = os.path.dirname(os.path.dirname(storage.paths.run_dir(project, run_id)))
        storage.remove_empty_dirs(os.path.dirname(storage.paths.run_dir(project, run_id)), runs_dir)
    if found:
        catalog.refresh()
    return [run_id for run_id, _ in found]
