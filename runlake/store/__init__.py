"""The on-storage contract and its I/O: settings, layout, manifests, storage, Parquet, liveness, spill.

Nothing here imports from the floors above (write/, read/, ops/).
"""
