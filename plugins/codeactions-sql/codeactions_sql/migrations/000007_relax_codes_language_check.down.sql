-- Fails while codes of plugin languages exist; delete or convert them first.
ALTER TABLE codes DROP CONSTRAINT IF EXISTS codes_language_check;
ALTER TABLE codes ADD CONSTRAINT codes_language_check
    CHECK (language IN ('python', 'go', 'javascript'));
