# Sourced by scripts/test.sh. The PostgreSQL and Redis the tests use: the machine's
# (PostgreSQL on 127.0.0.1:5432 with trust auth and a database `test`; Redis on
# 127.0.0.1:6379) where they answer, otherwise servers of our own started here from
# the Debian packages, data under .services/. Exports LIVE_INTERPRETER_TEST_POSTGRES
# and LIVE_INTERPRETER_TEST_REDIS for the tests.

_services=$PWD/.services
mkdir -p "$_services"

_pg_usable() {  # port -> whether user postgres gets into database `test` without a password
  PGCONNECT_TIMEOUT=3 psql -h 127.0.0.1 -p "$1" -U postgres -d test -w -c 'SELECT 1' >/dev/null 2>&1
}

_pg_port=5432
if ! _pg_usable 5432; then
  if pg_isready -q -h 127.0.0.1 -p 5432 &&
     PGCONNECT_TIMEOUT=3 psql -h 127.0.0.1 -U postgres -d postgres -w -q \
       -c 'CREATE DATABASE test' 2>/dev/null; then
    :  # the machine's server, without the test database until now
  else
    # None, or one that wants a password (Debian's own cluster): ours, beside it.
    pg_isready -q -h 127.0.0.1 -p 5432 && _pg_port=55432
    _bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    _data=$_services/postgres
    _as_owner=()
    if (( EUID == 0 )); then _as_owner=(runuser -u postgres --); chown postgres: "$_services"; fi
    [[ -f $_data/PG_VERSION ]] || "${_as_owner[@]}" "$_bin/initdb" -D "$_data" -A trust -U postgres >/dev/null
    if ! pg_isready -q -h 127.0.0.1 -p "$_pg_port"; then
      echo "services: starting PostgreSQL on 127.0.0.1:$_pg_port ($_data)"
      "${_as_owner[@]}" "$_bin/pg_ctl" -D "$_data" -l "$_services/postgres.log" -w start \
        -o "-p $_pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$_services"
    fi
    _pg_usable "$_pg_port" ||
      psql -h 127.0.0.1 -p "$_pg_port" -U postgres -d postgres -w -q -c 'CREATE DATABASE test'
  fi
fi
export LIVE_INTERPRETER_TEST_POSTGRES="postgresql://postgres@127.0.0.1:$_pg_port/test"

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: starting Redis on 127.0.0.1:6379"
  redis-server --port 6379 --bind 127.0.0.1 --daemonize yes --save '' \
    --dir "$_services" --logfile "$_services/redis.log"
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
export LIVE_INTERPRETER_TEST_REDIS="redis://127.0.0.1:6379/0"
