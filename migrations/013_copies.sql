-- 013_copies: copy detection (issue 24, CONTRACT §8).
--
--   function_code          one row per registry function whose source
--                          `snapshot` could read: the source's SHA-256 (so
--                          an unchanged file is not fingerprinted again) and
--                          its fingerprints, 4 bytes each, little-endian
--                          (src/contract/code/fingerprint.rs). Hashes of
--                          masked token runs; no code is stored. The
--                          registry catalog loads them to look for copies.
--   function_versions      `copy_detected` rows name the file the copy was
--     .file_path           written to (NULL for `index` and `edit_hook`
--                          rows, whose file is the function's own).

CREATE TABLE function_code (
    function_id    TEXT PRIMARY KEY NOT NULL,
    content_sha256 TEXT NOT NULL,
    fingerprints   BLOB NOT NULL,
    seen_at        TEXT NOT NULL CHECK (seen_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z')
) WITHOUT ROWID;

ALTER TABLE function_versions ADD COLUMN file_path TEXT;
