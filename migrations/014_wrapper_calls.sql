-- 014_wrapper_calls: calls measured by the Python telemetry wrapper
-- (issue 24, CONTRACT §8).
--
--   calls.wrapper_calls   how many calls the wrapper measured inside this
--                         row's tool use (a heredoc that imported the
--                         function). 0: the row says what the Bash command
--                         said as a whole. Above 0: `duration_ms` is the sum
--                         of the measured calls, `success` 1 only if every
--                         one succeeded, `error_class` the exception class
--                         of the first that failed; the command's PostToolUse
--                         no longer overwrites them. Calls the wrapper
--                         measured outside any such row are rows of their own
--                         with `source = 'wrapper'`.

ALTER TABLE calls ADD COLUMN wrapper_calls INTEGER NOT NULL DEFAULT 0 CHECK (wrapper_calls >= 0);
