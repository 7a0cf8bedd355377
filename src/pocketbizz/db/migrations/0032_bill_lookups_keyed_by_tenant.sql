-- The two bill lookups (0022 pb_internal.payment_bills, 0026 pb_internal.payment_link_bills)
-- were keyed by the bill id alone, the only tenant tables whose primary key did not hold
-- business_owner_id: deploy/citus/distribute.sql had to re-key them before distributing. Now
-- the schema is the one that distributes, as every other tenant table is. The bill id is a
-- uuid made by the server (the payment's or the link's own id), so (business_owner_id, id)
-- keeps it unique. The ToyyibPay callback names a bill by its id alone (it does not know the
-- tenant): an index on id keeps that lookup an index scan.
alter table pb_internal.payment_bills
    drop constraint payment_bills_pkey, add primary key (business_owner_id, id);
create index payment_bills_id_idx on pb_internal.payment_bills (id);
-- The tenant's bills (a purge, the owner policies) now come from the primary key's prefix.
drop index pb_internal.payment_bills_owner_idx;

alter table pb_internal.payment_link_bills
    drop constraint payment_link_bills_pkey, add primary key (business_owner_id, id);
create index payment_link_bills_id_idx on pb_internal.payment_link_bills (id);
drop index pb_internal.payment_link_bills_owner_idx;
