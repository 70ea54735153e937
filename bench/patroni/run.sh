#!/usr/bin/env bash
# Patroni failover benchmark: the peer figures for mware's pg_controller and group election.
#
# Usage: bash bench/patroni/run.sh SETTINGS [RUNS]
#   SETTINGS  A        Patroni defaults: ttl 30, loop_wait 10, retry_timeout 10
#             B        tight:            ttl 5,  loop_wait 1,  retry_timeout 2
#             T,L,R    any ttl,loop_wait,retry_timeout (loop_wait + 2*retry_timeout <= ttl)
#   RUNS      number of failovers to measure (default 5)
#
# Each run builds everything from scratch in a temp dir: one etcd (v3 API, loopback, free
# ports), two Patroni nodes (REST API and PostgreSQL 15 on free loopback ports, run as the
# `postgres` OS user), waits for a leader and a streaming replica, writes a row, sleeps a random
# 0..loop_wait s (so the kill falls at a random phase of the leader's key refresh), then
# simulates node death: at t0 it sends kill -9 to the leader's Patroni process, its postmaster
# and the postmaster's children, all by PID. It then measures on the surviving node:
#   write:  first `INSERT` accepted (psql over TCP, polled every 100 ms)        -> t1
#   leader: first `GET /leader` answered 200 by its REST API (polled every 100 ms) -> t2
# and prints t1 - t0 and t2 - t0 per run, then min / median / max.
# Every process it starts is killed by PID on exit; the whole script is bounded by `timeout`.
# Needs: apt-get install -y patroni (Debian bookworm: patroni 3.0.2), etcd 3.4 at /usr/bin/etcd,
# PostgreSQL 15 at /usr/lib/postgresql/15/bin, curl, setpriv; run as root.
set -euo pipefail

SETTINGS=${1:-B}
RUNS=${2:-5}
case "$SETTINGS" in
  A) TTL=30; LOOP_WAIT=10; RETRY_TIMEOUT=10 ;;
  B) TTL=5; LOOP_WAIT=1; RETRY_TIMEOUT=2 ;;
  *,*,*) IFS=, read -r TTL LOOP_WAIT RETRY_TIMEOUT <<<"$SETTINGS" ;;
  *) echo "usage: $0 A|B|TTL,LOOP_WAIT,RETRY_TIMEOUT [RUNS]" >&2; exit 2 ;;
esac
if (( LOOP_WAIT + 2 * RETRY_TIMEOUT > TTL )); then
  echo "loop_wait + 2*retry_timeout must be <= ttl (got $LOOP_WAIT + 2*$RETRY_TIMEOUT > $TTL)" >&2
  exit 2
fi

# Bound the whole script in time: re-run under `timeout`; our TERM trap cleans up.
if [[ -z "${PATRONI_BENCH_INNER:-}" ]]; then
  LIMIT=$(( 60 + RUNS * (3 * TTL + LOOP_WAIT + 150) ))
  PATRONI_BENCH_INNER=1 exec timeout --kill-after=20 "$LIMIT" bash "$0" "$@"
fi

PGBIN=/usr/lib/postgresql/15/bin
PSQL=$PGBIN/psql
ETCD=/usr/bin/etcd
PATRONI=$(command -v patroni)
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=${PATRONI_BENCH_RESULTS:-}   # optional CSV to append to: label,ttl,loop_wait,retry_timeout,run,pause_s,write_s,leader_s

PIDS=()        # every process started (or to be killed) by this script
TMP=""

now() { date +%s.%N; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  # postmasters are started by Patroni, not by us: kill them (and their children) by PID too
  if [[ -n "$TMP" ]]; then
    for f in "$TMP"/node*/data/postmaster.pid; do
      [[ -f "$f" ]] || continue
      p=$(head -1 "$f")
      if [[ "$p" =~ ^[0-9]+$ ]] && [[ "$(cat /proc/"$p"/comm 2>/dev/null)" == postgres ]]; then
        local kids
        kids=$(pgrep -P "$p" || true)
        kill -9 "$p" $kids 2>/dev/null || true
      fi
    done
    sleep 0.3
    rm -rf "$TMP"
  fi
  PIDS=()
  TMP=""
}
trap 'cleanup' EXIT
trap 'log "interrupted"; exit 130' INT TERM

free_ports() { # N free loopback TCP ports, distinct
  python3 - "$1" <<'EOF'
import socket, sys
ss = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ss.append(s)
print(" ".join(str(s.getsockname()[1]) for s in ss))
EOF
}

http_code() { curl -s -o /dev/null -m 1 -w '%{http_code}' "$1" || true; }

wait_until() { # wait_until SECONDS DESCRIPTION CMD...
  local limit=$1 what=$2; shift 2
  local end=$(( $(date +%s) + limit ))
  until "$@"; do
    if (( $(date +%s) >= end )); then log "timeout waiting for $what"; return 1; fi
    sleep 0.2
  done
}

psql_at() { # psql_at PORT SQL
  timeout 3 "$PSQL" "host=127.0.0.1 port=$1 user=postgres dbname=postgres connect_timeout=2" \
    -XAtq -v ON_ERROR_STOP=1 -c "$2"
}

write_config() { # write_config N REST_PORT PG_PORT ETCD_PORT
  local n=$1 rest=$2 pg=$3 etcd=$4 dir="$TMP/node$1"
  mkdir -p "$dir"
  cat >"$dir/patroni.yml" <<EOF
scope: bench
namespace: /service/
name: node$n
log:
  level: INFO
restapi:
  listen: 127.0.0.1:$rest
  connect_address: 127.0.0.1:$rest
etcd3:
  hosts: 127.0.0.1:$etcd
bootstrap:
  dcs:
    ttl: $TTL
    loop_wait: $LOOP_WAIT
    retry_timeout: $RETRY_TIMEOUT
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: false
      use_slots: true
      parameters:
        fsync: "off"
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 5
        max_replication_slots: 5
  initdb:
  - encoding: UTF8
  - auth: trust
postgresql:
  listen: 127.0.0.1:$pg
  connect_address: 127.0.0.1:$pg
  data_dir: $dir/data
  bin_dir: $PGBIN
  pgpass: $dir/pgpass
  authentication:
    superuser:
      username: postgres
      password: bench
    replication:
      username: replicator
      password: bench
  parameters:
    unix_socket_directories: $dir
  pg_hba:
  - local all all trust
  - host all all 127.0.0.1/32 trust
  - host replication all 127.0.0.1/32 trust
watchdog:
  mode: "off"
tags: {}
EOF
  chown -R postgres:postgres "$dir"
}

start_node() { # start_node N  -> sets NODE_PID[N]
  local n=$1 dir="$TMP/node$1"
  setpriv --reuid=postgres --regid=postgres --init-groups \
    env HOME="$dir" "$PATRONI" "$dir/patroni.yml" >"$dir/patroni.log" 2>&1 &
  NODE_PID[$n]=$!
  PIDS+=("$!")
  disown "$!"   # killed by PID in cleanup; no "Killed" job notices
}

is_200() { [[ "$(http_code "$1")" == 200 ]]; }

replica_streaming() { # on the leader's pg port
  [[ "$(psql_at "$1" "select count(*) from pg_stat_replication where state = 'streaming'" 2>/dev/null)" == 1 ]]
}

row_replicated() { # replica pg port
  [[ "$(psql_at "$1" "select count(*) from bench" 2>/dev/null)" == 1 ]]
}

one_run() { # one_run I  -> sets RUN_WRITE and RUN_LEADER (seconds or NA)
  local i=$1
  TMP=$(mktemp -d /tmp/patroni-bench.XXXXXX)
  chmod 755 "$TMP"
  chown postgres:postgres "$TMP"
  read -r EC EP R1 R2 P1 P2 <<<"$(free_ports 6)"
  declare -gA NODE_PID=()
  declare -A REST=([1]=$R1 [2]=$R2) PG=([1]=$P1 [2]=$P2)

  mkdir -p "$TMP/etcd"
  "$ETCD" --name e1 --data-dir "$TMP/etcd/data" \
    --listen-client-urls "http://127.0.0.1:$EC" --advertise-client-urls "http://127.0.0.1:$EC" \
    --listen-peer-urls "http://127.0.0.1:$EP" --initial-advertise-peer-urls "http://127.0.0.1:$EP" \
    --initial-cluster "e1=http://127.0.0.1:$EP" >"$TMP/etcd/etcd.log" 2>&1 &
  PIDS+=("$!")
  disown "$!"
  wait_until 30 "etcd health" is_200 "http://127.0.0.1:$EC/health"

  write_config 1 "$R1" "$P1" "$EC"
  write_config 2 "$R2" "$P2" "$EC"
  start_node 1
  wait_until 90 "node1 leader" is_200 "http://127.0.0.1:$R1/leader"
  start_node 2
  wait_until 120 "node2 replica" is_200 "http://127.0.0.1:$R2/replica"

  local L S
  if is_200 "http://127.0.0.1:$R1/leader"; then L=1; S=2; else L=2; S=1; fi
  wait_until 60 "streaming replica" replica_streaming "${PG[$L]}"
  psql_at "${PG[$L]}" "create table bench (id serial primary key, at timestamptz default now()); insert into bench default values" >/dev/null
  wait_until 30 "row on replica" row_replicated "${PG[$S]}"

  # random phase relative to the leader's key refresh (every loop_wait)
  local pause; pause=$(python3 -c "import random; print(round(random.uniform(0, $LOOP_WAIT), 2))")
  sleep "$pause"

  local pm kids
  pm=$(head -1 "$TMP/node$L/data/postmaster.pid")
  kids=$(pgrep -P "$pm" | tr '\n' ' ' || true)

  # leader-key poller on the survivor, started before the kill
  local lfile="$TMP/leader_at"
  (
    end=$(( $(date +%s) + 3 * TTL + 90 ))
    while (( $(date +%s) < end )); do
      if [[ "$(curl -s -o /dev/null -m 0.5 -w '%{http_code}' "http://127.0.0.1:${REST[$S]}/leader")" == 200 ]]; then
        date +%s.%N >"$lfile"; exit 0
      fi
      sleep 0.1
    done
  ) &
  PIDS+=("$!")
  disown "$!"
  sleep 0.3

  local t0 t1=""
  t0=$(now)
  # shellcheck disable=SC2086
  kill -9 "${NODE_PID[$L]}" "$pm" $kids
  log "run $i: killed node$L (patroni ${NODE_PID[$L]}, postmaster $pm, children: $kids) after ${pause}s pause"

  local end=$(( $(date +%s) + 3 * TTL + 90 ))
  while (( $(date +%s) < end )); do
    if psql_at "${PG[$S]}" "insert into bench default values" >/dev/null 2>&1; then t1=$(now); break; fi
    sleep 0.1
  done
  # the leader key normally comes first; give the poller a moment if not
  for _ in $(seq 1 50); do [[ -s "$lfile" ]] && break; sleep 0.1; done
  local t2=""; [[ -s "$lfile" ]] && t2=$(cat "$lfile")

  local w="NA" l="NA"
  [[ -n "$t1" ]] && w=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
  [[ -n "$t2" ]] && l=$(python3 -c "print(f'{$t2 - $t0:.2f}')")
  if [[ "$w" == NA ]]; then
    log "run $i: no write accepted on node$S; last lines of its log:"
    tail -20 "$TMP/node$S/patroni.log" >&2 || true
  fi
  if [[ -n "${PATRONI_BENCH_KEEP_LOGS:-}" ]]; then
    mkdir -p "$PATRONI_BENCH_KEEP_LOGS/run$i"
    for n in 1 2; do cp "$TMP/node$n/patroni.log" "$PATRONI_BENCH_KEEP_LOGS/run$i/node$n.log" 2>/dev/null || true; done
    cp "$TMP/etcd/etcd.log" "$PATRONI_BENCH_KEEP_LOGS/run$i/" 2>/dev/null || true
  fi
  cleanup
  RUN_WRITE=$w; RUN_LEADER=$l; RUN_PAUSE=$pause
}

stats() { # stats VALUES... -> "min / median / max" over the numeric ones
  python3 - "$@" <<'EOF'
import statistics, sys
v = sorted(float(x) for x in sys.argv[1:] if x != "NA")
print(f"{v[0]:.2f} / {statistics.median(v):.2f} / {v[-1]:.2f} s (n={len(v)})" if v else "no data")
EOF
}

echo "patroni: $("$PATRONI" --version 2>&1)  etcd: $("$ETCD" --version | head -1)  postgres: $("$PGBIN/postgres" --version)"
echo "settings $SETTINGS: ttl=$TTL loop_wait=$LOOP_WAIT retry_timeout=$RETRY_TIMEOUT, runs=$RUNS"
WRITES=(); LEADERS=()
for i in $(seq 1 "$RUNS"); do
  one_run "$i"
  w=$RUN_WRITE; l=$RUN_LEADER
  echo "run $i: kill -> first write ${w} s; kill -> GET /leader 200 ${l} s"
  WRITES+=("$w"); LEADERS+=("$l")
  if [[ -n "$RESULTS" ]]; then
    label=$SETTINGS; [[ "$label" == *,* ]] && label=custom
    echo "$label,$TTL,$LOOP_WAIT,$RETRY_TIMEOUT,$i,$RUN_PAUSE,$w,$l" >>"$RESULTS"
  fi
done
echo "summary $SETTINGS (ttl=$TTL loop_wait=$LOOP_WAIT retry_timeout=$RETRY_TIMEOUT):"
echo "  kill -> first write     min / median / max: $(stats "${WRITES[@]}")"
echo "  kill -> GET /leader 200 min / median / max: $(stats "${LEADERS[@]}")"
