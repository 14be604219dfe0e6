#!/bin/bash
# haproxy-variant.sh start|stop|reload - Debian HAProxy as in ../shared/bench/haproxy.sh
# (same shape: one thread, :18080 http and :18090 tcp, round robin over
# 127.0.0.1:18081 and :18082), with the VARIANT that bench/weir.sh also knows:
#   VARIANT=leastconn  balance leastconn
#   VARIANT=maxconn10  maxconn 10 on each server (wrk's 50 connections queue)
# so that a weir variant is compared with HAProxy under the same settings.
set -euo pipefail
B=${BENCH_DIR:-$(cd "$(dirname "$0")/../../shared/bench" && pwd)}
. "$B/lib.sh"
HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
D=$BENCH_TMP/haproxy-variant; CFG=$D/haproxy.cfg; PIDF=$D/haproxy.pid; SOCK=$D/master.sock

write_cfg() {
  local balance=roundrobin srv=""
  case ${VARIANT:-} in
    leastconn) balance=leastconn ;;
    maxconn10) srv=" maxconn 10" ;;
    "") ;;
    *) echo "unknown VARIANT=$VARIANT (leastconn, maxconn10)" >&2; exit 2 ;;
  esac
  mkdir -p "$D"
  cat >"$CFG" <<CFGEOF
global
    nbthread 1
    maxconn 4096
    hard-stop-after 30s

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout queue 5s
    timeout http-keep-alive 30s

frontend fe_http
    bind 127.0.0.1:18080
    default_backend be_http

backend be_http
    balance $balance
    http-reuse safe
    server b1 127.0.0.1:18081$srv
    server b2 127.0.0.1:18082$srv

frontend fe_tcp
    mode tcp
    bind 127.0.0.1:18090
    default_backend be_tcp

backend be_tcp
    mode tcp
    balance $balance
    server b1 127.0.0.1:18081$srv
    server b2 127.0.0.1:18082$srv
CFGEOF
}

case ${1:-} in
  start)
    write_cfg
    "$HAPROXY" -c -q -f "$CFG"
    "$HAPROXY" -W -D -S "$SOCK" -f "$CFG" -p "$PIDF" 2>>"$D/haproxy.log"
    wait_port 18080 ;;
  reload)
    echo reload | socat - "UNIX-CONNECT:$SOCK" >/dev/null ;;
  stop)
    if [[ -f $PIDF ]]; then stop_pid "$(cat "$PIDF")"; rm -f "$PIDF"; fi ;;
  *) echo "usage: $0 start|stop|reload" >&2; exit 2 ;;
esac
