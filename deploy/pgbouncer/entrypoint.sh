#!/bin/sh
# The auth file holds the one login clients may use through PgBouncer: `authenticator`, with
# the password the migrations give it (PB_AUTHENTICATOR_PASSWORD). The owner never goes
# through the pooler: migrations, LISTEN and the job queue use DATABASE_DIRECT_URL.
set -eu
: "${PB_AUTHENTICATOR_PASSWORD:?PB_AUTHENTICATOR_PASSWORD must be set}"
umask 077
# In the auth file a double quote inside a value is written twice.
escaped=$(printf '%s' "$PB_AUTHENTICATOR_PASSWORD" | sed 's/"/""/g')
printf '"authenticator" "%s"\n' "$escaped" > /etc/pgbouncer/userlist.txt
chown postgres:postgres /etc/pgbouncer/userlist.txt
# PgBouncer refuses to run as root.
exec pgbouncer -u postgres /etc/pgbouncer/pgbouncer.ini
