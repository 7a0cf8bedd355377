create or replace function pb_internal.require_uid() returns uuid
language plpgsql stable set search_path = '' as $$
declare
    v_uid uuid := auth.uid();
begin
    if v_uid is null then
        raise exception 'a signed-in user is required' using errcode = '42501';
    end if;
    return v_uid;
end
$$;
grant execute on function pb_internal.require_uid() to authenticated, service_role,
    pb_definer;
