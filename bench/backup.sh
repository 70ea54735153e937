#!/usr/bin/env bash
# Benchmark of backup_controller against pgBackRest 2.45 (see bench/backup.md): a full
# backup of a ~1 GB database (pgbench -i -s 70) and its restore, time, archive size and
# CPU for both, on this machine, in one run.
#
#   sudo bash bench/backup.sh            (SCALE=70 by default; SCALE=5 for a quick try)
#
# Ours: a mware daemon (release build) whose backup window is open runs at once:
# pg_basebackup over SSH on the database server, zip with deflate level 6 on both cores,
# streamed over SSH into the storage folder (a second sshd), sha256 checked there; then
# `mware backup restore`. pgBackRest: a local repository, compress-type=gz (level 6, its
# default), process-max=2, start-fast=y, WAL archived by archive-push; then its restore.
# CPU is user+system time of every process of each side (the mware daemon and CLI, the
# sshd sessions with pg_basebackup and cat, the PostgreSQL backends; pgbackrest and its
# children, the archiver's archive-push), read from /proc (children via cutime/cstime of
# the processes that reaped them). Needs root (runs PostgreSQL as postgres, mounts
# nothing). Starts everything on free loopback ports and kills only what it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
MWARE=$TARGET/release/mware
SCALE=${SCALE:-70}
PGBIN=/usr/lib/postgresql/15/bin
LIMIT=${LIMIT:-900}

[ -x "$MWARE" ] || (cd "$ROOT" && cargo build --release -p mware)
command -v pgbackrest >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y pgbackrest >/dev/null

WORK=$(mktemp -d /var/tmp/mware-bkbench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
PGDATA=$WORK/pg
cleanup() {
    runuser -u postgres -- "$PGBIN/pg_ctl" stop -D "$PGDATA" -m immediate >/dev/null 2>&1 || true
    runuser -u postgres -- "$PGBIN/pg_ctl" stop -D "$WORK/restore-ours" -m immediate >/dev/null 2>&1 || true
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 not open" >&2; exit 1; }
# user+system seconds of a process itself, and of its reaped children.
cpu_self() { awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /,""); print ($12+$13)/hz}' "/proc/$1/stat"; }
cpu_children() { awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /,""); print ($14+$15)/hz}' "/proc/$1/stat"; }
now() { date +%s.%N; }
fsum() { python3 -c "import sys; print(round(sum(float(x) for x in sys.argv[1:]), 2))" "$@"; }
fsub() { python3 -c "import sys; print(round(float(sys.argv[1]) - float(sys.argv[2]), 2))" "$1" "$2"; }

PW=mware-bench-ssh-pw
echo "postgres:$PW" | chpasswd
mkdir -p /run/sshd
start_sshd() { # name port -> pid
    local d=$WORK/$1
    mkdir -p "$d"
    ssh-keygen -q -t ed25519 -N '' -C '' -f "$d/host_key"
    printf 'Port %s\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM yes\nPermitRootLogin no\nAllowUsers postgres\nStrictModes no\nMaxStartups 100\n' \
        "$2" "$d/host_key" "$d/sshd.pid" > "$d/sshd_config"
    /usr/sbin/sshd -D -f "$d/sshd_config" -E "$d/sshd.log" &
    PIDS+=($!)
    wait_port "$2"
    echo "[127.0.0.1]:$2 $(cut -d' ' -f1,2 "$d/host_key.pub")" >> "$WORK/known_hosts"
}

# --- PostgreSQL with a pgbench database -----------------------------------------------
PGPORT=$(free_port)
chown postgres: "$WORK"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust --no-sync >/dev/null
cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$WORK'
wal_level = replica
max_wal_senders = 10
wal_keep_size = 2GB
archive_mode = on
archive_command = 'pgbackrest --config=$WORK/pgbackrest.conf --stanza=bench archive-push %p'
shared_buffers = 128MB
CONF
cat > "$PGDATA/pg_hba.conf" <<HBA
local all all trust
host all postgres 127.0.0.1/32 trust
host replication replica 127.0.0.1/32 scram-sha-256
host all replica 127.0.0.1/32 scram-sha-256
HBA
cat > "$WORK/pgbackrest.conf" <<BR
[global]
repo1-path=$WORK/repo
repo1-retention-full=1
compress-type=gz
process-max=2
start-fast=y
log-level-console=warn
log-path=$WORK/brlog
lock-path=$WORK/brlock
spool-path=$WORK/brspool

[bench]
pg1-path=$PGDATA
pg1-port=$PGPORT
pg1-socket-path=$WORK
BR
mkdir -p "$WORK/repo" "$WORK/brlog" "$WORK/brlock" "$WORK/brspool" "$WORK/storage"
chown -R postgres: "$WORK"
runuser -u postgres -- "$PGBIN/pg_ctl" start -D "$PGDATA" -l "$WORK/pg.log" -w >/dev/null
PG() { runuser -u postgres -- "$PGBIN/psql" -h "$WORK" -p "$PGPORT" -U postgres -d postgres -qAt "$@"; }
PG -c "CREATE ROLE replica WITH LOGIN REPLICATION PASSWORD 'mware-bench-replica-pw'; GRANT pg_monitor TO replica;"
echo "pgbench -i -s $SCALE ..."
runuser -u postgres -- "$PGBIN/pgbench" -h "$WORK" -p "$PGPORT" -U postgres -i -q -s "$SCALE" postgres 2>&1 | tail -1
PG -c "CHECKPOINT"
DBSIZE=$(PG -c "SELECT pg_database_size('postgres')")
DATASIZE=$(du -sb "$PGDATA" | cut -f1)
runuser -u postgres -- pgbackrest --config="$WORK/pgbackrest.conf" --stanza=bench stanza-create >/dev/null
POSTMASTER=$(head -1 "$PGDATA/postmaster.pid")

# --- ours -------------------------------------------------------------------------------
DBSSH=$(free_port); STSSH=$(free_port); API=$(free_port)
start_sshd dbssh "$DBSSH"; DBSSHD=${PIDS[-1]}
start_sshd stssh "$STSSH"; STSSHD=${PIDS[-1]}
cat > "$WORK/site.json" <<SITE
{"site": "bench", "coordination": {"backend": "embedded", "path": "$WORK/coord.sqlite"},
 "ssh": {"known_hosts": "$WORK/known_hosts"},
 "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [
  {"name": "m1", "roletype": "mware", "iface": "lo", "group": 1, "order": 1, "api_port": $API,
   "backup_controller": {"hours_interval": [0, 23], "weekdays": [1,2,3,4,5,6,7],
     "storage_ssh_host": "127.0.0.1", "storage_ssh_port": $STSSH, "storage_ssh_user": "postgres", "storage_ssh_pwd": "$PW",
     "storage_ssh_path": "$WORK/storage",
     "pgdb": [{"key": "db1", "servers": [{"ssh_host": "127.0.0.1", "pg_host": "127.0.0.1"}], "ssh_port": $DBSSH, "ssh_user": "postgres",
               "ssh_pwd": "$PW", "pg_port": $PGPORT, "pg_replica_user": "replica", "pg_replica_pwd": "mware-bench-replica-pw",
               "pg_basebackup_command": "$PGBIN/pg_basebackup"}]}}]}]}
SITE
"$MWARE" validate --config "$WORK/site.json" >/dev/null
PM0=$(cpu_children "$POSTMASTER"); DB0=$(cpu_children "$DBSSHD"); ST0=$(cpu_children "$STSSHD")
T0=$(now)
"$MWARE" run --config "$WORK/site.json" --instance m1 > "$WORK/mware.log" 2>&1 &
MW=$!; PIDS+=($MW)
for _ in $(seq $((LIMIT * 5))); do
    R=$(curl -s "http://127.0.0.1:$API/api/v1/backups" || true)
    echo "$R" | grep -q '"result":"ok"' && break
    echo "$R" | grep -q '"result":"failed"' && { echo "our backup failed: $R" >&2; exit 1; }
    sleep 0.2
done
T1=$(now)
MWCPU=$(cpu_self "$MW")
sleep 0.5
OURS_CPU=$(fsum "$MWCPU" "$(fsub "$(cpu_children "$POSTMASTER")" "$PM0")" "$(fsub "$(cpu_children "$DBSSHD")" "$DB0")" "$(fsub "$(cpu_children "$STSSHD")" "$ST0")")
RUN=$(curl -s "http://127.0.0.1:$API/api/v1/backups")
OURS_TIME=$(python3 -c "import json,sys; r=json.loads(sys.argv[1])['last_run']; print(round((r['finished_ms']-r['started_ms'])/1000, 2))" "$RUN")
OURS_SIZE=$(stat -c %s "$WORK/storage/db1.zip")
kill "$MW"; wait "$MW" 2>/dev/null || true

ST0=$(cpu_children "$STSSHD")
T0=$(now)
/usr/bin/time -f '%U %S' -o "$WORK/restore.time" "$MWARE" backup restore --config "$WORK/site.json" --target db1 --archive "$WORK/storage/db1.zip" --to "$WORK/restore-ours" > "$WORK/restore.out"
T1=$(now)
OURS_RTIME=$(fsub "$T1" "$T0")
OURS_RCPU=$(fsum $(cat "$WORK/restore.time") "$(fsub "$(cpu_children "$STSSHD")" "$ST0")")
OURS_RSIZE=$(du -sb "$WORK/restore-ours" | cut -f1)

# --- pgBackRest -------------------------------------------------------------------------
PM0=$(cpu_children "$POSTMASTER")
T0=$(now)
/usr/bin/time -f '%U %S' -o "$WORK/br.time" runuser -u postgres -- timeout "$LIMIT" pgbackrest --config="$WORK/pgbackrest.conf" --stanza=bench --type=full backup
T1=$(now)
BR_TIME=$(fsub "$T1" "$T0")
sleep 1
BR_CPU=$(fsum $(cat "$WORK/br.time") "$(fsub "$(cpu_children "$POSTMASTER")" "$PM0")")
BR_SIZE=$(du -sb "$WORK/repo/backup/bench" | cut -f1)
BR_WAL=$(du -sb "$WORK/repo/archive/bench" | cut -f1)
mkdir -p "$WORK/restore-br"; chown postgres: "$WORK/restore-br"; chmod 700 "$WORK/restore-br"
T0=$(now)
/usr/bin/time -f '%U %S' -o "$WORK/brr.time" runuser -u postgres -- timeout "$LIMIT" pgbackrest --config="$WORK/pgbackrest.conf" --stanza=bench --pg1-path="$WORK/restore-br" restore
T1=$(now)
BR_RTIME=$(fsub "$T1" "$T0")
BR_RCPU=$(fsum $(cat "$WORK/brr.time"))

# --- does our restored copy start? ------------------------------------------------------
chown -R postgres: "$WORK/restore-ours"
RPORT=$(free_port)
runuser -u postgres -- "$PGBIN/pg_ctl" start -D "$WORK/restore-ours" -l "$WORK/restore-ours.log" -w -t 300 \
    -o "-p $RPORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$WORK -c archive_mode=off" >/dev/null
ROWS=$(runuser -u postgres -- "$PGBIN/psql" -h "$WORK" -p "$RPORT" -U postgres -d postgres -qAt -c "SELECT count(*) FROM pgbench_accounts")

echo
echo "database: pgbench -i -s $SCALE, pg_database_size $DBSIZE bytes, data folder $DATASIZE bytes; $(nproc) cores"
printf '%-12s %10s %14s %10s   %10s %10s\n' "" "backup s" "archive bytes" "CPU s" "restore s" "CPU s"
printf '%-12s %10s %14s %10s   %10s %10s\n' "mware" "$OURS_TIME" "$OURS_SIZE" "$OURS_CPU" "$OURS_RTIME" "$OURS_RCPU"
printf '%-12s %10s %14s %10s   %10s %10s\n' "pgBackRest" "$BR_TIME" "$BR_SIZE" "$BR_CPU" "$BR_RTIME" "$BR_RCPU"
echo "pgBackRest WAL archive: $BR_WAL bytes (beside the backup); our restored copy: $OURS_RSIZE bytes, started, pgbench_accounts rows: $ROWS"
