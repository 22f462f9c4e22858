# Sourced by the scale-out test bed and the replica benchmark: a throwaway
# PostgreSQL cluster from Debian's package, in a directory of the caller's,
# run as the unprivileged `postgres` user when the caller is root.
#
#   pg_start DIR PORT   # installs the package if missing; sets $database
#   pg_stop DIR         # immediate stop (the caller removes DIR)

pg_install() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "installing Debian's postgresql" >&2
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  fi
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
}

# PostgreSQL refuses to run as root: then it runs as the package's own user.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {  # DIR PORT
  local dir=$1 port=$2
  pg_install
  mkdir -p "$dir/data" "$dir/sock"
  chmod 755 "$dir"
  [ "$(id -u)" -ne 0 ] || chown postgres "$dir/data" "$dir/sock"
  as_pg "$pg_bin/initdb" -D "$dir/data" -A trust -U allot >/dev/null
  as_pg "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/sock/server.log" -w \
    -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1" start >/dev/null \
    || { cat "$dir/sock/server.log" >&2; return 1; }
  "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U allot allot
  database="postgres://allot@127.0.0.1:$port/allot"
}

pg_stop() {  # DIR
  if [ -n "${pg_bin:-}" ] && [ -f "$1/data/postmaster.pid" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$1/data" -m immediate stop >/dev/null 2>&1
  fi
}
