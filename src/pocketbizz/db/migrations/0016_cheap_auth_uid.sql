-- auth.uid() without a regular expression (issue 12).
--
-- Forced RLS now applies inside the domain's SECURITY DEFINER writers (0009), and every table
-- a statement names adds its policy's `(select auth.uid())`: a 3-line create_sale calls
-- auth.uid() 18 times. 0001's body spent most of its ~16-20 µs per call on the
-- case-insensitive regex that checks sub's shape (measured, 100,000 calls); pg_input_is_valid
-- answers the same question in the uuid parser itself. In PL/pgSQL the claims are parsed once
-- per call (an inlinable SQL body would parse them twice, once to test and once to cast):
-- about 3.5-6 µs per call on the same run, against 6-8 µs for the SQL form.
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
