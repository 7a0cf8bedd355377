-- auth.uid() without a regular expression, in PL/pgSQL (issue 12).
--
-- Forced RLS now applies inside the domain's SECURITY DEFINER writers (0009), and every table
-- a statement names adds its policy's `(select auth.uid())`: a 3-line create_sale called
-- auth.uid() 18 times. 0001's SQL body has a FROM clause, so it is never inlined, and a SQL
-- function that is not inlined sets up its own executor on every call. Measured, 100,000
-- calls in one query: 0001's body 16-21 µs each; the same SQL body with pg_input_is_valid
-- instead of the case-insensitive regex 12-19 µs; an inlinable SQL form 6-8 µs (it parses the
-- claims twice, to test and to cast); this PL/pgSQL body 3.5-6 µs (its plan is kept for the
-- session). Within create_sale: ~34 µs per call before, ~3.8 µs after (bench/sale_profile.py).
--
-- Same contract: NULL without claims, without sub, or when sub is no uuid (anon, service
-- keys). The uuid parser also takes the spellings Supabase's own auth.uid() cast accepts (upper
-- case, braces, no hyphens) for the same id; only a token signed with the project's secret
-- carries a sub at all, and it names the same user however it is spelled.
create or replace function auth.uid() returns uuid
language plpgsql stable as $$
declare
    sub text := nullif(pg_catalog.current_setting('request.jwt.claims', true), '')
                    ::pg_catalog.jsonb operator(pg_catalog.->>) 'sub';
begin
    if pg_catalog.pg_input_is_valid(sub, 'uuid') then
        return sub::pg_catalog.uuid;
    end if;
    return null;
end
$$;
