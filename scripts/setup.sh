#!/usr/bin/env bash
# Installs and starts what mware's tests need, idempotently:
#   etcd (Debian etcd-server 3.4), protoc (only for the test that regenerates the vendored
#   etcd client's code, tools/etcd-proto-gen; building needs none), sshd, sudo, rsync,
#   Kamailio and SIPp (a real SIP client of the realtime sidecar), Chromium and chromedriver
#   (the operator console's tests in a real browser), snmpd and snmp (the SNMP agent device
#   jobs are tested against), openssl (test TLS certificates),
#   wrk and nginx (benchmarks), unzip (the backup tests check archives with it), promtool
#   (unpacked under /var/tmp/mware-promtool, for the
#   example alert rules), dnsmasq (the dns probe's tests), blackbox_exporter (unpacked under
#   /var/tmp/mware-blackbox, the monitoring bench's peer), and makes sure PostgreSQL 15 on 5432 and RabbitMQ on 5672 run.
# Tests start their own etcd, PostgreSQL instances and sshd on loopback ports; this script
# only provides the binaries and the machine's shared services.
set -euo pipefail

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have etcd || [ -x /usr/bin/etcd ] || need_pkgs+=(etcd-server)
have etcdctl || need_pkgs+=(etcd-client)
have protoc || need_pkgs+=(protobuf-compiler)
[ -x /usr/sbin/sshd ] || need_pkgs+=(openssh-server)
have sudo || need_pkgs+=(sudo)
have rsync || need_pkgs+=(rsync)
have wrk || need_pkgs+=(wrk)
have nginx || need_pkgs+=(nginx-light)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_pkgs+=(postgresql-15)
have rabbitmq-server || need_pkgs+=(rabbitmq-server)
have pg_lsclusters || need_pkgs+=(postgresql-common)
have kamailio || [ -x /usr/sbin/kamailio ] || need_pkgs+=(kamailio)
have chromium || need_pkgs+=(chromium)
have chromedriver || need_pkgs+=(chromium-driver)
[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/http_client.so ] || ls /usr/lib/*/kamailio/modules/http_client.so >/dev/null 2>&1 || need_pkgs+=(kamailio-utils-modules)
[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/evapi.so ] || need_pkgs+=(kamailio-extra-modules)
# call tracking: the presence modules (the server of external numbers, presence.cfg), TLS
# and WebSocket listeners of the sg (sg.cfg), and Python's websockets (a SIP-over-WebSocket
# phone in the sg tests).
[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/presence_dialoginfo.so ] || need_pkgs+=(kamailio-presence-modules)
[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ] || need_pkgs+=(kamailio-tls-modules)
[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/websocket.so ] || need_pkgs+=(kamailio-websocket-modules)
/usr/bin/python3 -c 'import websockets' 2>/dev/null || need_pkgs+=(python3-websockets)
have sipp || need_pkgs+=(sip-tester)
have openssl || need_pkgs+=(openssl)
# backup tests: Info-ZIP's unzip checks our archives; fallocate fills a tmpfs (util-linux).
have unzip || need_pkgs+=(unzip)
have fallocate || need_pkgs+=(util-linux)
# the package test: systemd-analyze verify (no systemd runs here), curl and jq read the API.
have systemd-analyze || need_pkgs+=(systemd)
have curl || need_pkgs+=(curl)
have jq || need_pkgs+=(jq)
[ -x /usr/sbin/dnsmasq ] || need_pkgs+=(dnsmasq-base)
[ -x /usr/sbin/snmpd ] || need_pkgs+=(snmpd)
have snmpget || need_pkgs+=(snmp)
# alarms tests: snmptrapd parses mware's traps with examples/mibs/MWARE-ALARMS-MIB.txt,
# whose imports (SNMPv2-SMI, -TC, -CONF) Debian ships only in erlang-snmp (net-snmp's
# copies are in the non-free snmp-mibs-downloader); logger (bsdutils) sends syslog; the
# alarms bench compares with rsyslog's omsnmp (rsyslog-snmp).
[ -x /usr/sbin/snmptrapd ] || need_pkgs+=(snmptrapd)
ls -d /usr/lib/erlang/lib/snmp-*/mibs >/dev/null 2>&1 || need_pkgs+=(erlang-snmp)
have logger || need_pkgs+=(bsdutils)
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/omsnmp.so ] || need_pkgs+=(rsyslog-snmp)
# calls: baresip phones (RTP between them), sox to make and check tones.
have baresip || need_pkgs+=(baresip)
have sox || need_pkgs+=(sox)
# microservices bench: supervisord's stdout capture is the peer; socat the echo peer.
have supervisord || need_pkgs+=(supervisor)
have socat || need_pkgs+=(socat)
# acme: pebble (Let's Encrypt's test CA), BIND 9 for DNS-01 (RFC 2136), certbot and lego
# as the benchmark's peers.
have pebble || need_pkgs+=(pebble)
[ -x /usr/sbin/named ] || need_pkgs+=(bind9)
have nsupdate || need_pkgs+=(bind9-utils)
have certbot || need_pkgs+=(certbot)
have lego || need_pkgs+=(lego)
# users: an SMTP sink for the mail tests.
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need_pkgs+=(python3-aiosmtpd)
# conferences: Janus (AudioBridge) as the mixer, espeak-ng for spoken notifications.
[ -x /usr/bin/janus ] || need_pkgs+=(janus)
have espeak-ng || need_pkgs+=(espeak-ng)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "setup: installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  marker=/var/tmp/mware-apt-updated
  if [ ! -e "$marker" ]; then apt-get -o DPkg::Lock::Timeout=600 update -qq && touch "$marker"; fi
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need_pkgs[@]}" >/dev/null
fi
mkdir -p /run/sshd

# rustfmt and clippy for the hygiene checks of scripts/test.sh (in rustup's default profile;
# added if a minimal toolchain lacks them).
for c in rustfmt clippy; do
  cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1 || rustup component add "$c" || true
done
# cargo-machete: the unused-dependency check of scripts/test.sh.
command -v cargo-machete >/dev/null 2>&1 || cargo install --locked --quiet cargo-machete
# cargo-deb: builds the Debian package (scripts/package.sh; crates/mware/tests/package.rs).
command -v cargo-deb >/dev/null 2>&1 || cargo install --locked --quiet cargo-deb

# promtool, to check examples/alerts.yml: only the binary of Debian's prometheus package,
# unpacked, not installed (installing would start a Prometheus server).
PROMTOOL_DIR=/var/tmp/mware-promtool
if [ ! -x "$PROMTOOL_DIR/usr/bin/promtool" ]; then
  echo "setup: fetching promtool (Debian's prometheus package, unpacked)"
  marker=/var/tmp/mware-apt-updated
  if [ ! -e "$marker" ]; then apt-get -o DPkg::Lock::Timeout=600 update -qq && touch "$marker"; fi
  dl=$(mktemp -d)
  chmod 777 "$dl"
  (cd "$dl" && apt-get download -qq prometheus 2>/dev/null) && dpkg -x "$dl"/prometheus_*.deb "$PROMTOOL_DIR"
  rm -rf "$dl"
  [ -x "$PROMTOOL_DIR/usr/bin/promtool" ] || { echo "setup: could not fetch promtool" >&2; exit 1; }
fi

# blackbox_exporter, the peer of the monitoring bench (crates/services/monitor/examples/
# probe_bench.rs): only the binary of Debian's package, unpacked, not installed (installing
# would start the exporter as a service).
BLACKBOX_DIR=/var/tmp/mware-blackbox
if [ ! -x "$BLACKBOX_DIR/usr/bin/prometheus-blackbox-exporter" ]; then
  echo "setup: fetching blackbox_exporter (Debian's prometheus-blackbox-exporter package, unpacked)"
  marker=/var/tmp/mware-apt-updated
  if [ ! -e "$marker" ]; then apt-get -o DPkg::Lock::Timeout=600 update -qq && touch "$marker"; fi
  dl=$(mktemp -d)
  chmod 777 "$dl"
  (cd "$dl" && apt-get download -qq prometheus-blackbox-exporter 2>/dev/null) && dpkg -x "$dl"/prometheus-blackbox-exporter_*.deb "$BLACKBOX_DIR"
  rm -rf "$dl"
  [ -x "$BLACKBOX_DIR/usr/bin/prometheus-blackbox-exporter" ] || echo "setup: could not fetch blackbox_exporter (only the monitoring bench needs it)" >&2
fi

# users: the npm oidc-provider (a real OpenID provider for the OIDC tests), in a folder of
# its own, pinned; node and npm come from Debian (nodejs, npm).
OIDC_DIR=/var/tmp/mware-oidc-provider
if [ ! -e "$OIDC_DIR/node_modules/oidc-provider/package.json" ]; then
  if ! have npm; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq nodejs npm >/dev/null
  fi
  echo "setup: installing oidc-provider into $OIDC_DIR"
  mkdir -p "$OIDC_DIR"
  npm install --prefix "$OIDC_DIR" --no-audit --no-fund --silent oidc-provider@8.8.1 \
    || echo "setup: could not install oidc-provider (only the users OIDC test needs it)" >&2
fi

# PostgreSQL 15 on 5432 (trust for local connections, as on these machines).
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "setup: starting PostgreSQL"
  cl=$(ls /etc/postgresql 2>/dev/null | head -1)
  if [ -n "$cl" ]; then
    pg_ctlcluster --skip-systemctl-redirect "$cl" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 || { echo "setup: PostgreSQL on 5432 is not running" >&2; exit 1; }

# RabbitMQ on 5672.
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  echo "setup: starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 1; done
fi
echo "setup: ready (etcd $(etcd --version 2>/dev/null | head -1 | awk '{print $3}'), PostgreSQL on 5432, RabbitMQ on 5672)"
