"""Operations on a whole root: compaction into packs, the doctor, uploading spilled parts."""
