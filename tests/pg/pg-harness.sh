#!/bin/sh
# tests/pg/pg-harness.sh: a private PostgreSQL server inside one directory,
# for the tests and benchmarks of the PostgreSQL store (issue 11).
#
#   pg-harness.sh start DIR     initdb into DIR/data on first use, then start
#                               the server; prints the conninfo on stdout:
#                               postgresql://candor@127.0.0.1:PORT/candor
#   pg-harness.sh stop DIR      pg_ctl stop -m fast (safe when not running)
#   pg-harness.sh restart DIR   stop, then start on the same port and data
#   pg-harness.sh status DIR    exit 0 when the server runs
#   pg-harness.sh conninfo DIR [tcp|socket]
#                               the TCP URI (default) or the keyword string
#                               host=DIR port=PORT user=candor dbname=candor
#   pg-harness.sh createdb DIR NAME
#                               (re)create the empty database NAME (dropped
#                               first if it exists); prints its TCP URI
#   pg-harness.sh bindir        the PostgreSQL bin directory it would use
#
# The server listens on a unix socket in DIR and on 127.0.0.1 (a free port,
# kept across restarts), trusts local connections (nothing but loopback can
# reach it), keeps fsync on and is no system service: nothing outside DIR is
# written.  Binaries: $PG_BINDIR, else the newest /usr/lib/postgresql/*/bin
# (Debian's postgresql package), else initdb on PATH.  initdb refuses to run
# as root, so as root the server runs as $PG_HARNESS_USER, else `postgres`
# (created by Debian's package), else `nobody`; DIR is chown'd to that user
# and must be reachable by it (DIR's parents need o+x).
# Exit status: 0 done, 1 failure (the server log's tail on stderr), 2 usage,
# 77 PostgreSQL's binaries are missing.
set -u

die() { echo "pg-harness: $*" >&2; exit 1; }

find_bindir() {
    if [ -n "${PG_BINDIR:-}" ]; then
        [ -x "$PG_BINDIR/initdb" ] && { echo "$PG_BINDIR"; return 0; }
        return 1
    fi
    best=
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5n); do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] && best=$d
    done
    if [ -z "$best" ]; then
        p=$(command -v initdb 2>/dev/null) || return 1
        best=$(dirname "$(readlink -f "$p")")
        [ -x "$best/pg_ctl" ] || return 1
    fi
    echo "$best"
}

pick_user() {
    if [ "$(id -u)" != 0 ]; then
        id -un
    elif [ -n "${PG_HARNESS_USER:-}" ]; then
        echo "$PG_HARNESS_USER"
    elif getent passwd postgres >/dev/null 2>&1; then
        echo postgres
    else
        echo nobody
    fi
}

# as_user CMD ARGS...: run as the server's owner (as root: drop privileges).
as_user() {
    if [ "$(id -u)" = 0 ]; then
        if command -v runuser >/dev/null 2>&1; then
            runuser -u "$owner" -- "$@"
        else
            setpriv --reuid="$owner" --regid="$(id -g "$owner")" --clear-groups -- "$@"
        fi
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

running() {
    [ -f "$dir/data/postmaster.pid" ] || return 1
    as_user "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

tcp_conninfo() { echo "postgresql://candor@127.0.0.1:$(cat "$dir/port")/${1:-candor}"; }
socket_conninfo() { echo "host=$dir port=$(cat "$dir/port") user=candor dbname=candor"; }

do_init() {
    mkdir -p "$dir" || die "cannot create $dir"
    if [ "$(id -u)" = 0 ]; then
        chown "$owner" "$dir" || die "cannot chown $dir to $owner"
        as_user test -w "$dir" ||
            die "$dir is not reachable by user $owner (its parent directories need o+x)"
    fi
    as_user "$bindir/initdb" -D "$dir/data" -U candor --auth=trust -E UTF8 \
        --locale=C >"$dir/initdb.log" 2>&1 ||
        { tail -n 20 "$dir/initdb.log" >&2; die "initdb failed (log: $dir/initdb.log)"; }
    # A few settings so that the tests run on a small shared machine; fsync
    # and synchronous_commit stay at their (durable) defaults.
    cat >>"$dir/data/postgresql.conf" <<EOF

# ---- candor tests/pg/pg-harness.sh ----
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 100
shared_buffers = 32MB
fsync = on
logging_collector = off
log_min_messages = warning
EOF
}

do_start() {
    [ -d "$dir/data" ] || do_init
    running && { tcp_conninfo; return 0; }
    # A free port on first start; the same one on later starts (the clients
    # of the outage test keep their conninfo), unless it got taken.
    tries=0
    while :; do
        tries=$((tries + 1))
        if [ ! -f "$dir/port" ] || [ "$tries" -gt 1 ]; then
            free_port >"$dir/port" || die "no free port"
        fi
        port=$(cat "$dir/port")
        if as_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
                -o "-p $port" start >"$dir/pg_ctl.log" 2>&1; then
            break
        fi
        if [ "$tries" -ge 3 ]; then
            tail -n 20 "$dir/server.log" >&2 2>/dev/null
            die "pg_ctl start failed (log: $dir/server.log)"
        fi
    done
    if [ ! -f "$dir/created" ]; then
        as_user "$bindir/psql" -X -q -h "$dir" -p "$port" -U candor -d postgres \
            -c 'CREATE DATABASE candor' >/dev/null 2>"$dir/createdb.log" ||
            { cat "$dir/createdb.log" >&2; die "CREATE DATABASE failed"; }
        touch "$dir/created"
    fi
    tcp_conninfo
}

do_stop() {
    [ -d "$dir/data" ] || return 0
    running || return 0
    as_user "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
        die "pg_ctl stop failed (log: $dir/server.log)"
}

[ $# -ge 1 ] || { sed -n '2,29s/^# \{0,1\}//p' "$0" >&2; exit 2; }
cmd=$1
if [ "$cmd" = bindir ]; then
    find_bindir || { echo "pg-harness: PostgreSQL's binaries not found" >&2; exit 77; }
    exit 0
fi
[ $# -ge 2 ] || { echo "usage: pg-harness.sh $cmd DIR" >&2; exit 2; }
case $2 in
    /*) dir=$2 ;;
    *) dir=$(pwd)/$2 ;;
esac
bindir=$(find_bindir) || { echo "pg-harness: PostgreSQL's binaries not found (install Debian's postgresql, or set PG_BINDIR)" >&2; exit 77; }
if [ -f "$dir/owner" ]; then owner=$(cat "$dir/owner"); else owner=$(pick_user); fi

case $cmd in
    start)
        mkdir -p "$dir" 2>/dev/null
        [ -f "$dir/owner" ] || echo "$owner" >"$dir/owner" 2>/dev/null
        do_start ;;
    stop) do_stop ;;
    restart) do_stop && do_start ;;
    status) running ;;
    createdb)
        [ $# -ge 3 ] || { echo "usage: pg-harness.sh createdb DIR NAME" >&2; exit 2; }
        case $3 in
            *[!a-z0-9_]* | "" | [0-9]*) echo "pg-harness: database names: [a-z_][a-z0-9_]*" >&2; exit 2 ;;
        esac
        running || die "no server runs in $dir"
        port=$(cat "$dir/port")
        for sql in "DROP DATABASE IF EXISTS $3 WITH (FORCE)" "CREATE DATABASE $3"; do
            "$bindir/psql" -X -q -h "$dir" -p "$port" -U candor -d postgres -c "$sql" \
                >/dev/null 2>"$dir/createdb.log" ||
                { cat "$dir/createdb.log" >&2; die "$sql failed"; }
        done
        tcp_conninfo "$3" ;;
    conninfo)
        [ -f "$dir/port" ] || die "no server was started in $dir"
        case ${3:-tcp} in
            tcp) tcp_conninfo ;;
            socket) socket_conninfo ;;
            *) echo "usage: pg-harness.sh conninfo DIR [tcp|socket]" >&2; exit 2 ;;
        esac ;;
    *) echo "pg-harness: unknown command $cmd (start, stop, restart, status, conninfo, createdb, bindir)" >&2
       exit 2 ;;
esac
