"""Writing runs: W&B's logging semantics over an in-memory buffer (run, values, packing,
buffer), the storage side (writer, flusher), the open runs of this process (registry), and
starting a run (start: create, fork, rewind, resume)."""
