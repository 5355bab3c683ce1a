"""`runlake ui`: a local, read-only web app over a root (runs, a run, compare, population,
SQL, live updates). `server.create_app(root)` is the ASGI app; `api` holds the JSON it serves."""
