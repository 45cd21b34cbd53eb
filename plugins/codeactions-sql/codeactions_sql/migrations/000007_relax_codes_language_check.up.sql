-- Languages added by runtime plugins must be storable: replace the closed list
-- of languages (whatever its constraint is called) with a check on the shape
-- of a language name.
DO $$
DECLARE constraint_row record;
BEGIN
    FOR constraint_row IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'codes'::regclass AND contype = 'c'
          AND pg_get_constraintdef(oid) LIKE '%language%'
    LOOP
        EXECUTE format('ALTER TABLE codes DROP CONSTRAINT %I', constraint_row.conname);
    END LOOP;
END $$;

ALTER TABLE codes ADD CONSTRAINT codes_language_check
    CHECK (language ~ '^[a-z][a-z0-9_+.-]{0,49}$');
