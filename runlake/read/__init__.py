"""Reading a root: the catalog (an index folded from manifests), one ancestor walk and file
selection (lineage), one scan engine (scan), assembly into frames, and the Reader API."""
