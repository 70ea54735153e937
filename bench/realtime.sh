#!/usr/bin/env bash
# Benchmark of the rtcache sidecar against nginx as a caching proxy of the
# same provisioning upstream (see bench/realtime.md), then a side-by-side of
# the outage behaviour nginx cannot give.
#
#   bash bench/realtime.sh
#
# Needs: PostgreSQL on 127.0.0.1:5432 (user postgres, trust), wrk, nginx, curl, python3.
# Starts everything on free loopback ports, kills only what it started (by PID).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/examples/rtnode
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
IDS=10000

# Always (a no-op when up to date): an older rtnode lacks `fixed` and measures old code.
# Niced: only the build, not the measurement.
(cd "$ROOT" && nice -n 19 cargo build --release -p mware-realtime --example rtnode)

WORK=$(mktemp -d /tmp/rtbench.XXXXXX)
chmod 755 "$WORK"
DB=rtbench_$$
PIDS=()
PSQL=(psql -h 127.0.0.1 -U postgres -qAt)

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
[ -n "${DEBUG:-}" ] && set -x

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 did not open" >&2; exit 1
}

# --- provisioning database: 10,000 endpoints ---------------------------------
"${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB"
"${PSQL[@]}" -d "$DB" -c "
CREATE TABLE ps_endpoints (id varchar(40) PRIMARY KEY, transport varchar(40), aors varchar(200),
  auth varchar(40), context varchar(40), disallow varchar(200), allow varchar(200), callerid varchar(40));
CREATE TABLE ps_auths (id varchar(40) PRIMARY KEY, auth_type varchar(40), password varchar(80), username varchar(40));
CREATE TABLE ps_aors (id varchar(40) PRIMARY KEY, max_contacts integer);
INSERT INTO ps_endpoints SELECT g::text, 'transport-udp', g::text, g::text, 'from-internal', 'all', 'ulaw,alaw',
  'User ' || g || ' <' || g || '>' FROM generate_series(1, $IDS) g;"

UP=$(free_port); SC=$(free_port); NG=$(free_port); FX=$(free_port); NF=$(free_port); SR=$(free_port)
# The SIP server is entity 12:34:56:78:9a:bc with an HTTP Basic credential; the bench
# tables have no domain column, so their families are marked shared.
EID=12:34:56:78:9a:bc
BASIC="Basic $(printf 'bench:bench-pw' | base64)"
RT_ENTITIES='{"12:34:56:78:9a:bc": {"domains": ["t1.example.ru"], "user": "bench", "password": "bench-pw", "write": true}}' \
RT_DSN="host=127.0.0.1 user=postgres dbname=$DB" "$BIN" upstream --listen "127.0.0.1:$UP" \
    --shared-family endpoint --shared-family auth --shared-family aor >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
"$BIN" rtcache --listen "127.0.0.1:$SC" --upstream "http://127.0.0.1:$UP" --cache-dir "$WORK/rtcache" \
    --object-lifetime-maximum 86400 --object-lifetime-stale 600 >"$WORK/rtcache.log" 2>&1 &
PIDS+=($!)
# The same sidecar with a SO_REUSEPORT socket per thread (`--accept reuseport`), to
# compare the two ways of spreading connections in the same minutes.
"$BIN" rtcache --listen "127.0.0.1:$SR" --upstream "http://127.0.0.1:$UP" --cache-dir "$WORK/rtcache-rp" \
    --object-lifetime-maximum 86400 --object-lifetime-stale 600 --accept reuseport >"$WORK/rtcache-rp.log" 2>&1 &
PIDS+=($!)

# The floor: a server that reads each request and writes a fixed answer of a cached
# answer's size (no parser, no lookup), one current-thread tokio runtime per core
# with its own SO_REUSEPORT listener; the same answer from nginx (`return 200`).
ANSWER_BYTES=${ANSWER_BYTES:-139}
"$BIN" fixed --listen "127.0.0.1:$FX" --threads "$(nproc)" --body-bytes "$ANSWER_BYTES" >"$WORK/fixed.log" 2>&1 &
PIDS+=($!)
FIXED_BODY=$(head -c "$ANSWER_BYTES" /dev/zero | tr '\0' x)

mkdir -p "$WORK/nginx/cache" "$WORK/nginx/tmp"
USER_LINE=""
[ "$(id -u)" = 0 ] && USER_LINE="user root;"
cat >"$WORK/nginx/nginx.conf" <<NGINX
$USER_LINE
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    proxy_cache_path $WORK/nginx/cache levels=1:2 keys_zone=rt:64m max_size=1g inactive=1d use_temp_path=off;
    upstream provisioning { server 127.0.0.1:$UP; keepalive 64; }
    server {
        listen 127.0.0.1:$NG;
        client_body_buffer_size 64k;
        client_max_body_size 64k;
        location / {
            proxy_pass http://provisioning;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache rt;
            proxy_cache_methods POST;
            proxy_cache_key "\$request_uri|\$request_body";
            proxy_cache_valid 200 10m;
            proxy_cache_use_stale error timeout http_500 http_502 http_503;
            add_header X-Cache \$upstream_cache_status;
        }
    }
    server {
        listen 127.0.0.1:$NF;
        client_body_buffer_size 64k;
        location / { default_type "text/plain; charset=utf-8"; return 200 "$FIXED_BODY"; }
    }
}
NGINX
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
PIDS+=($!)
wait_port "$UP"; wait_port "$SC"; wait_port "$NG"; wait_port "$FX"; wait_port "$NF"; wait_port "$SR"

# --- wrk scripts --------------------------------------------------------------
cat >"$WORK/warm.lua" <<LUA
-- every id in order (run with one thread)
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "$BASIC"
function request()
    n = n + 1
    local id = (n % 10000) + 1
    return wrk.format(nil, nil, nil, "id=" .. id)
end
LUA
cat >"$WORK/bench.lua" <<LUA
-- a POST single for a random one of 10,000 ids, as res_config_curl sends it
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "$BASIC"
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1000000)) end
function request()
    return wrk.format(nil, nil, nil, "id=" .. math.random(1, 10000))
end
LUA
# The same, paced: each connection waits 1 ms after each answer, so both servers get about
# the same offered load below their capacity and their p99s compare at equal work.
{ cat "$WORK/bench.lua"; echo 'function delay() return 1 end'; } >"$WORK/paced.lua"

PATH_SINGLE=/provision/asterisk/$EID/endpoint/single
warm() { # $1 port
    for _ in $(seq 1 30); do
        wrk -t1 -c8 -d3s -s "$WORK/warm.lua" "http://127.0.0.1:$1$PATH_SINGLE" >/dev/null
        local have
        if [ "$1" = "$SC" ] || [ "$1" = "$SR" ]; then
            have=$(curl -s "http://127.0.0.1:$1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')
        else
            have=$(find "$WORK/nginx/cache" -type f | wc -l)
        fi
        [ "$have" -ge "$IDS" ] && { echo "  warmed port $1: $have cached answers"; return 0; }
    done
    echo "could not warm port $1 (have $have)" >&2; tail -n 5 "$WORK"/*.log >&2; exit 1
}
echo "warming caches ($IDS ids)..."
warm "$SC"
warm "$NG"
warm "$SR"

cpu_ticks() { # pids... -> utime+stime of them and their children (threads included), in ticks
    local t=0 p
    for p in "$@" $(for q in "$@"; do pgrep -P "$q"; done); do
        [ -r "/proc/$p/stat" ] && t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat") ))
    done
    echo "$t"
}
run() { # $1 name $2 port $3 pid of the server measured [$4 script, default bench.lua]
    local out rps p99 reqs before after wrkcpu load
    before=$(cpu_ticks "$3")
    # `times` last: the CPU (user, system) of this subshell's children, i.e. of wrk.
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$WORK/${4:-bench.lua}" "http://127.0.0.1:$2$PATH_SINGLE"; times)
    after=$(cpu_ticks "$3")
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "$out" >"$WORK/wrk-$1.txt"
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    cpu=$(python3 -c "print('%.1f' % (($after - $before) * 1e6 / $(getconf CLK_TCK) / max($reqs, 1)))")
    wrkcpu=$(echo "$out" | tail -n 1 | python3 -c "
import re, sys
m = [float(a) * 60 + float(b) for a, b in re.findall(r'(\d+)m([\d.]+)s', sys.stdin.read())]
print('%.1f' % (sum(m) * 1e6 / max($reqs, 1)))")
    printf "| %-8s | %12s | %10s | %8s | %12s | %12s | %5s |\n" "$1" "$rps" "$p99" "${non2xx:-0}" "$cpu" "$wrkcpu" "$load"
    eval "RPS_$1=$rps"
    eval "CPU_$1=$cpu"
}
echo
echo "wrk -t$THREADS -c$CONNS -d$DURATION, POST single, random id of $IDS (upstream: no cache; proxies: all cache hits)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg), cores: $(nproc)"
echo "| proxy    |        req/s |        p99 | non-2xx  | µs CPU / req | wrk µs / req |  load |"
echo "|----------|--------------|------------|----------|--------------|--------------|-------|"
NGINX_PID=$(cat "$WORK/nginx/nginx.pid")
run upstream "$UP" "${PIDS[0]}"
# PERF_RTCACHE=FILE: a perf profile of the sidecar during its first run (a diagnostic).
[ -n "${PERF_RTCACHE:-}" ] && { perf record -F 999 -g -o "$PERF_RTCACHE" -p "${PIDS[1]}" >/dev/null 2>&1 & PERF_PID=$!; }
run rtcache "$SC" "${PIDS[1]}"
[ -n "${PERF_RTCACHE:-}" ] && { kill -INT "$PERF_PID"; wait "$PERF_PID" || true; }
run nginx "$NG" "$NGINX_PID"
run rtreuse "$SR" "${PIDS[2]}"
run rtcache2 "$SC" "${PIDS[1]}"
run nginx2 "$NG" "$NGINX_PID"
run rtreuse2 "$SR" "${PIDS[2]}"
FIXED_PID=${PIDS[3]}
run fixed "$FX" "$FIXED_PID"
run ngxfixed "$NF" "$NGINX_PID"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); a cached answer is $(curl -s -X POST -u bench:bench-pw -d id=5000 "http://127.0.0.1:$SC$PATH_SINGLE" | wc -c) bytes, the fixed ones $ANSWER_BYTES"
python3 -c "print('ratio rtcache/nginx (mean of 2 runs each): %.2f req/s, %.2f CPU per request' % ((float('$RPS_rtcache')+float('$RPS_rtcache2'))/(float('$RPS_nginx')+float('$RPS_nginx2')), (float('$CPU_rtcache')+float('$CPU_rtcache2'))/(float('$CPU_nginx')+float('$CPU_nginx2'))))"
echo
echo "paced (each connection waits 1 ms after each answer: about the same offered load for both, below capacity)"
echo "| proxy    |        req/s |        p99 | non-2xx  | µs CPU / req | wrk µs / req |  load |"
echo "|----------|--------------|------------|----------|--------------|--------------|-------|"
run pacedrt "$SC" "${PIDS[1]}" paced.lua
run pacedng "$NG" "$NGINX_PID" paced.lua
run pacedrt2 "$SC" "${PIDS[1]}" paced.lua
run pacedng2 "$NG" "$NGINX_PID" paced.lua
python3 -c "print('ratio rtcache --accept reuseport/nginx (mean of 2 runs each): %.2f req/s' % ((float('$RPS_rtreuse')+float('$RPS_rtreuse2'))/(float('$RPS_nginx')+float('$RPS_nginx2'))))"
python3 -c "print('floor: the fixed-answer server is %.2fx nginx caching proxy req/s, %.2fx nginx return 200' % (2*float('$RPS_fixed')/(float('$RPS_nginx')+float('$RPS_nginx2')), float('$RPS_fixed')/float('$RPS_ngxfixed')))"

# --- behaviour nginx cannot give ---------------------------------------------
post() { # port suffix body -> "status body" (body cut to 30 bytes)
    curl -s -o "$WORK/body" -w '%{http_code}' -X POST -H 'Content-Type: application/x-www-form-urlencoded' -u bench:bench-pw \
        --data-binary "$3" "http://127.0.0.1:$1/provision/asterisk/$EID/endpoint/$2" >"$WORK/code" || echo 000 >"$WORK/code"
    local b; b=$(head -c 30 "$WORK/body" | tr -d '\r\n')
    case "$b" in "<html>"*) b="<html> error page";; "") b="(empty)";; esac
    printf '%s %s' "$(cat "$WORK/code")" "$b"
}
ctx() { # port id -> "status context=..."
    post "$1" single "id=$2" >/dev/null
    printf '%s %s' "$(cat "$WORK/code")" "$(grep -o 'context=[^&]*' "$WORK/body" || echo '(empty)')"
}
present() { "${PSQL[@]}" -d "$DB" -c "SELECT CASE WHEN count(*) > 0 THEN 'row present' ELSE 'row MISSING' END FROM ps_endpoints WHERE id = '$1'"; }
sql() { "${PSQL[@]}" -d "$DB" -c "$1" >/dev/null; }
row() { printf "| %-58s | %-30s | %-30s |\n" "$1" "$2" "$3"; }
echo
echo "| case                                                       | rtcache                        | nginx                          |"
echo "|------------------------------------------------------------|--------------------------------|--------------------------------|"
# 1. a "not found" is never cached
post "$SC" single id=r1 >/dev/null; post "$NG" single id=n1 >/dev/null
sql "INSERT INTO ps_endpoints (id, context) VALUES ('r1', 'new'), ('n1', 'new')"
row "single of a missing id, the id is created, single again" "$(ctx "$SC" r1)" "$(ctx "$NG" n1)"
# 2. a write is never answered from cache
row "store X" "$(post "$SC" store 'id=r2&context=a')" "$(post "$NG" store 'id=n2&context=a')"
sql "DELETE FROM ps_endpoints WHERE id IN ('r2', 'n2')"
row "X deleted at the source, store X again" "$(post "$SC" store 'id=r2&context=a')" "$(post "$NG" store 'id=n2&context=a')"
row "... is X in the table?" "$(present r2)" "$(present n2)"
# 3. a write invalidates what it touched
ctx "$SC" 3 >/dev/null; ctx "$NG" 4 >/dev/null
row "update context=changed via the proxy" "$(post "$SC" 'update?id=3' 'context=changed')" "$(post "$NG" 'update?id=4' 'context=changed')"
row "single right after the update" "$(ctx "$SC" 3)" "$(ctx "$NG" 4)"
# 4. outage
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true
row "upstream down: single of a cached id" "$(ctx "$SC" 2)" "$(ctx "$NG" 2)"
row "upstream down: single of the id updated just before" "$(ctx "$SC" 3)" "$(ctx "$NG" 4)"
row "upstream down: single of an id never fetched" "$(post "$SC" single id=99999)" "$(post "$NG" single id=99999)"
row "upstream down: store a new id" "$(post "$SC" store 'id=r5')" "$(post "$NG" store 'id=n5')"
row "upstream down: store with the body of an earlier store" "$(post "$SC" store 'id=r2&context=a')" "$(post "$NG" store 'id=n2&context=a')"
echo
echo "(HTTP status and the start of the body. Asterisk reads a count with sscanf, so an HTML page reads as -1;"
echo " a stock Asterisk reads any empty single/multi as 'not found', a patched one (the article's) as an error on 5xx.)"
