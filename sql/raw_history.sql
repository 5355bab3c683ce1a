-- Every physical history row of the root, archived segments included.
-- runlake sets the variables runlake_parts (nodes' own part files) and runlake_packs (packs).
CREATE OR REPLACE VIEW raw_history AS
SELECT * FROM part_rows(getvariable('runlake_parts'))
UNION ALL
SELECT * FROM pack_rows(getvariable('runlake_packs'));
