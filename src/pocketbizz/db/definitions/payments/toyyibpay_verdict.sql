-- ToyyibPay's verdict on one bill, shared by the settle functions (subscription payments and
-- payment links) so both read the evidence alike: p_status '1' paid, '3' failed, anything else
-- null (the bill stays open). Paid with an amount that is not p_expected, in sen or in ringgit
-- (or no number at all), is 'flagged' for a person. Pure: the callers decide what a verdict
-- does to their rows.
create or replace function pb_internal.toyyibpay_verdict(
    p_status text, p_amount text, p_expected numeric
) returns text
language plpgsql immutable set search_path = '' as $$
declare
    v_reported numeric;
begin
    if p_status = '3' then
        return 'failed';
    elsif p_status is distinct from '1' then
        return null;
    end if;
    begin
        v_reported := pg_catalog.btrim(p_amount)::numeric;
    exception when invalid_text_representation then
        return 'flagged';
    end;
    if v_reported in (p_expected, p_expected * 100) then
        return 'paid';
    end if;
    return 'flagged';
end
$$;
revoke all on function pb_internal.toyyibpay_verdict(text, text, numeric) from public;
grant execute on function pb_internal.toyyibpay_verdict(text, text, numeric) to pb_settlement;
