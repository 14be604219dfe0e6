#!/bin/bash
# haproxy-variant.sh start|stop|reload - Debian HAProxy as in ../shared/bench/haproxy.sh
# (same shape: one thread, :18080 http and :18090 tcp, round robin over
# 127.0.0.1:18081 and :18082), with the VARIANT that bench/weir.sh also knows:
#   VARIANT=leastconn  balance leastconn
#   VARIANT=maxconn10  maxconn 10 on each server (wrk's 50 connections queue)
#   VARIANT=stick      fe_http tracks req.hdr(x-key) in the string table `keys`
#                      (1m entries, http_req_rate(10s)) and denies with 429
#                      above a rate never reached (bench/stick.sh)
#   VARIANT=stickfill  fe_http tracks req.hdr(x-key) in `keys` (len 16, 2m entries,
#                      http_req_cnt and http_req_rate(10s)), no deny
#   VARIANT=sticky     both backends stick on src (100k-entry ip tables)
#   VARIANT=cookie     be_http inserts a SRV cookie (indirect nocache), which wrk
#                      never sends back
# so that a weir variant is compared with HAProxy under the same settings.
# The runtime API (`show table`) is on $BENCH_TMP/haproxy-variant/stats.sock.
set -euo pipefail
B=${BENCH_DIR:-$(cd "$(dirname "$0")/../../shared/bench" && pwd)}
. "$B/lib.sh"
HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
D=$BENCH_TMP/haproxy-variant; CFG=$D/haproxy.cfg; PIDF=$D/haproxy.pid; SOCK=$D/master.sock

write_cfg() {
  local balance=roundrobin srv="" rules="" table="" persist="" srv1="" srv2=""
  local track="    http-request track-sc0 req.hdr(x-key) table keys"
  case ${VARIANT:-} in
    leastconn) balance=leastconn ;;
    maxconn10) srv=" maxconn 10" ;;
    stick)
      rules="$track
    http-request deny deny_status 429 if { sc0_http_req_rate gt 1000000 }"
      table="backend keys
    stick-table type string len 32 size 1m expire 60s store http_req_rate(10s)" ;;
    stickfill)
      rules=$track
      table="backend keys
    stick-table type string len 16 size 2m expire 10m store http_req_cnt,http_req_rate(10s)" ;;
    sticky)
      persist="    stick-table type ip size 100k expire 30m
    stick on src" ;;
    cookie) ;;
    "") ;;
    *) echo "unknown VARIANT=$VARIANT (leastconn, maxconn10, stick, stickfill, sticky, cookie)" >&2; exit 2 ;;
  esac
  mkdir -p "$D"
  cat >"$CFG" <<CFGEOF
global
    nbthread 1
    maxconn 4096
    hard-stop-after 30s
    stats socket $D/stats.sock level admin

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout queue 5s
    timeout http-keep-alive 30s

frontend fe_http
    bind 127.0.0.1:18080
$rules
    default_backend be_http

backend be_http
    balance $balance
    http-reuse safe
$persist
$( [[ ${VARIANT:-} == cookie ]] && echo "    cookie SRV insert indirect nocache" )
    server b1 127.0.0.1:18081$srv$( [[ ${VARIANT:-} == cookie ]] && echo " cookie b1" )
    server b2 127.0.0.1:18082$srv$( [[ ${VARIANT:-} == cookie ]] && echo " cookie b2" )

frontend fe_tcp
    mode tcp
    bind 127.0.0.1:18090
    default_backend be_tcp

backend be_tcp
    mode tcp
    balance $balance
$persist
    server b1 127.0.0.1:18081$srv
    server b2 127.0.0.1:18082$srv

$table
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
