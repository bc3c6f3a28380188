#!/usr/bin/env bash
# Scanner benchmark: a loopback fleet of N distinct hosts served by nginx, names answered by a
# local dnsmasq, scanned by `beian scan`, by wrk (new connection per request) and by an aiohttp
# script doing the same two fetches and a regex. Reports sites/s, peak RSS and CPU per site as
# ratios measured in the same run.
#
#   bash benches/fleet/run.sh [N=10000] [CONCURRENCY=1000]
#
# BASELINE_BIN=/path/to/older/beian adds the same scan with that binary, measured in the same
# run (for "no regression" checks between two versions). RENDER_N=K adds a fleet of K pages
# whose footer is written by a script, scanned with `--render auto` (needs chromium), and
# reports the cost per rendered page against the same pages scanned statically.
set -euo pipefail
N=${1:-10000}
CONC=${2:-1000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${BENCH_WORK:-/tmp/beian-fleet-bench}
PORT=18080
DNS_ADDR=127.0.0.53
mkdir -p "$WORK"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need dnsmasq || ! need wrk || ! need /usr/bin/time; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light dnsmasq-base wrk time >/dev/null
fi
python3 -c 'import aiohttp, aiodns' 2>/dev/null || pip install -q aiohttp aiodns

cd "$ROOT"
cargo build --release -q
BEIAN="$ROOT/target/release/beian"

# A registry with one filing; every host serves its homepage and certificate.
rm -rf "$WORK/reg" "$WORK/www" && mkdir -p "$WORK/www/cert"
"$BEIAN" registry init "$WORK/reg" >/dev/null
cat > "$WORK/one.jsonl" <<'JSON'
{"subject":{"name":"基准测试有限公司","nature":"企业","id_type":"统一社会信用代码","id_number":"91110108MA01BENCH1","province":"京","address":"北京市","contact":{"name":"张三","mobile":"13800000000","email":"a@example.com"}},"website":{"name":"基准","homepage":"http://bench.test/","domains":["bench.test"],"ips":[],"providers":["基准接入商"],"access_method":"虚拟主机","categories":[],"operating_licence":null}}
JSON
"$BEIAN" --registry "$WORK/reg" filing import "$WORK/one.jsonl" >/dev/null
"$BEIAN" --registry "$WORK/reg" filing verify-access --provider 基准接入商 --all >/dev/null
"$BEIAN" --registry "$WORK/reg" review --auto >/dev/null
"$BEIAN" --registry "$WORK/reg" cert export --domain bench.test --out "$WORK/www/cert/bazs.cert"
NUMBER=$("$BEIAN" --registry "$WORK/reg" filing show --domain bench.test --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["service_number"])')
"$BEIAN" --registry "$WORK/reg" snapshot export --out "$WORK/snapshot.bin" >/dev/null
python3 - "$WORK/www/index.html" "$NUMBER" <<'PY'
import sys
filler = "".join(f"<p>段落 {i}：这是一个用于基准测试的页面内容。</p>\n" for i in range(300))
open(sys.argv[1], "w").write(f"""<!doctype html><html><head><meta charset="utf-8"><title>基准</title></head>
<body><header><nav>首页</nav></header><main>{filler}</main>
<footer><p>© 2026 基准测试有限公司 <a href="https://beian.miit.gov.cn/" target="_blank">{sys.argv[2]}</a></p></footer></body></html>""")
PY

cat > "$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 8192; }
http {
    access_log off;
    default_type text/html;
    types { text/plain cert; text/html html; }
    keepalive_timeout 5;
    server { listen 127.0.0.1:$PORT default_server; root $WORK/www; index index.html; }
}
CONF
# Stop only what this run started: nginx (kept in the foreground) and dnsmasq are children of
# this shell, recorded by pid as they start and stopped by those pids on exit. Nothing is
# stopped by name, pattern or leftover pid file: a server someone else runs on the port makes
# this run fail instead.
STARTED=()
stop_started() {
    local pid
    for pid in "${STARTED[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${STARTED[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_started EXIT
nginx -c "$WORK/nginx.conf" -g 'daemon off;' &
STARTED+=("$!")
dnsmasq --keep-in-foreground --no-resolv --no-hosts --conf-file=/dev/null --user=root \
    --listen-address=$DNS_ADDR --bind-interfaces --port=53 --cache-size=10000 \
    --address=/bench.test/127.0.0.1 --pid-file=$WORK/dnsmasq.pid 2>"$WORK/dnsmasq-error.log" &
STARTED+=("$!")
sleep 1
for pid in "${STARTED[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "a server this run started (pid $pid) exited: is port $PORT or $DNS_ADDR:53 in use?" >&2
        cat "$WORK/nginx-error.log" "$WORK/dnsmasq-error.log" >&2 2>/dev/null || true
        exit 2
    fi
done

# Hosts for aiohttp; the same origins as URLs for beian, so both make the same two plain-http
# fetches per host (no https attempt).
gen_targets() { python3 -c "import sys; [print(f'{sys.argv[2]}site{i:06d}.bench.test{sys.argv[3]}') for i in range(int(sys.argv[1]))]" "$@"; }
gen_targets "$N" "" "" > "$WORK/targets.txt"
gen_targets "$N" "http://" ":$PORT/" > "$WORK/urls.txt"
gen_targets "$((N * 10))" "http://" ":$PORT/" > "$WORK/urls10.txt"

measure() { # label, command...
    local label=$1; shift
    /usr/bin/time -f "%e %U %S %M" -o "$WORK/time.$label" "$@" > "$WORK/out.$label" 2>"$WORK/err.$label" || true
    read -r wall user sys rss < <(tail -n 1 "$WORK/time.$label")
    echo "$label wall=${wall}s user=${user}s sys=${sys}s maxrss=${rss}KiB"
}

ulimit -n 20000
echo "== wrk (new connection per request), 10s"
wrk -t2 -c"$CONC" -d10s -H "Connection: close" "http://127.0.0.1:$PORT/" | tee "$WORK/wrk.txt"
echo "== aiohttp"
measure aiohttp python3 "$ROOT/benches/fleet/aiohttp_scan.py" "$WORK/targets.txt" "$PORT" "$CONC" "$DNS_ADDR"
cat "$WORK/out.aiohttp"
SCAN=("$BEIAN" scan --snapshot "$WORK/snapshot.bin" --dns "$DNS_ADDR:53" --allow-net 127.0.0.1/32 \
      --concurrency "$CONC" --no-history --no-progress)
echo "== beian scan, $N targets"
measure beian "${SCAN[@]}" --targets "$WORK/urls.txt" --out "$WORK/scan.jsonl"
echo "== beian scan, $((N * 10)) targets"
measure beian10 "${SCAN[@]}" --targets "$WORK/urls10.txt" --out "$WORK/scan10.jsonl"
if [ -n "${BASELINE_BIN:-}" ]; then
    # The baseline reads the snapshot format of its own version.
    "$BASELINE_BIN" --registry "$WORK/reg" snapshot export --out "$WORK/snapshot-base.bin" >/dev/null
    BASE=("$BASELINE_BIN" "${SCAN[@]:1}")
    BASE[3]="$WORK/snapshot-base.bin"
    # Alternate (baseline, beian, baseline, beian) after the warm-up runs above, so that
    # neither binary gets the cold or the warm turns.
    for round in 1 2; do
        echo "== baseline ($BASELINE_BIN) scan, $N targets, round $round"
        measure "base$round" "${BASE[@]}" --targets "$WORK/urls.txt" --out "$WORK/scan-base.jsonl"
        echo "== beian scan, $N targets, round $round"
        measure "new$round" "${SCAN[@]}" --targets "$WORK/urls.txt" --out "$WORK/scan2.jsonl"
    done
fi
if [ -n "${RENDER_N:-}" ]; then
    mkdir -p "$WORK/www/spa"
    python3 - "$WORK/www/spa/index.html" "$NUMBER" <<'PY'
import sys
open(sys.argv[1], "w").write(f"""<!doctype html><html><head><meta charset="utf-8"><title>脚本页</title></head>
<body><div id="app"></div><script>
document.getElementById('app').innerHTML = '<main><p>由脚本生成的页面。</p></main>' +
  '<footer><a href="https://beian.miit.gov.cn/">{sys.argv[2]}</a></footer>';
</script></body></html>""")
PY
    gen_targets "$RENDER_N" "http://" ":$PORT/spa/" > "$WORK/spa.txt"
    echo "== beian scan, $RENDER_N script-built pages, static only"
    measure spa_static "${SCAN[@]}" --targets "$WORK/spa.txt" --out "$WORK/spa-static.jsonl"
    echo "== beian scan, $RENDER_N script-built pages, --render auto"
    measure spa_render "${SCAN[@]}" --render auto --targets "$WORK/spa.txt" --out "$WORK/spa-render.jsonl"
fi

python3 - "$WORK" "$N" <<'PY'
import re, sys
w, n = sys.argv[1], int(sys.argv[2])
def t(label):
    wall, user, sys_, rss = open(f"{w}/time.{label}").read().splitlines()[-1].split()
    return float(wall), float(user) + float(sys_), int(rss) / 1024
wrk = float(re.search(r"Requests/sec:\s+([\d.]+)", open(f"{w}/wrk.txt").read()).group(1))
bw, bc, br = t("beian"); aw, ac, ar = t("aiohttp"); b10w, b10c, b10r = t("beian10")
bs, as_ = n / bw, n / aw
print(f"beian:   {bs:8.1f} sites/s  cpu/site {1000*bc/n:.3f} ms  peak RSS {br:.1f} MiB")
print(f"aiohttp: {as_:8.1f} sites/s  cpu/site {1000*ac/n:.3f} ms  peak RSS {ar:.1f} MiB")
print(f"beian x10 targets: {10*n/b10w:8.1f} sites/s  peak RSS {b10r:.1f} MiB")
print(f"wrk: {wrk:.0f} req/s (half of wrk/2 = {wrk/4:.0f} sites/s)")
print(f"ratios: beian/aiohttp sites/s = {bs/as_:.2f}x; beian/(wrk/2) = {bs/(wrk/2):.2f}; "
      f"cpu/site beian/aiohttp = {bc/ac:.2f}; RSS 10x targets / 1x = {b10r/br:.2f}")
import os
if os.path.exists(f"{w}/time.base1"):
    base = [t(f"base{r}") for r in (1, 2)]
    new = [t(f"new{r}") for r in (1, 2)]
    mean = lambda xs, i: sum(x[i] for x in xs) / len(xs)
    print(f"baseline: {n/mean(base,0):8.1f} sites/s  cpu/site {1000*mean(base,1)/n:.3f} ms  peak RSS {max(x[2] for x in base):.1f} MiB")
    print(f"this:     {n/mean(new,0):8.1f} sites/s  cpu/site {1000*mean(new,1)/n:.3f} ms  peak RSS {max(x[2] for x in new):.1f} MiB")
    print(f"ratios this/baseline (two alternating rounds each): sites/s = {mean(base,0)/mean(new,0):.3f}; "
          f"cpu/site = {mean(new,1)/mean(base,1):.3f}; peak RSS = {max(x[2] for x in new)/max(x[2] for x in base):.3f}")
if os.path.exists(f"{w}/time.spa_render"):
    import json
    k = sum(1 for _ in open(f"{w}/spa.txt"))
    sw, sc, _ = t("spa_static"); rw, rc, rr = t("spa_render")
    rendered = sum(1 for l in open(f"{w}/spa-render.jsonl") if '"status":"rendered"' in l)
    verdicts = {}
    for l in open(f"{w}/spa-render.jsonl"):
        v = json.loads(l)["verdict"]; verdicts[v] = verdicts.get(v, 0) + 1
    print(f"render: {rendered}/{k} pages rendered; verdicts {verdicts}; per rendered page "
          f"wall {1000*(rw-sw)/max(rendered,1):.1f} ms, CPU {1000*(rc-sc)/max(rendered,1):.1f} ms "
          f"(static scan of the same pages: {1000*sc/k:.2f} ms CPU each); peak RSS {rr:.1f} MiB")
main_needed = sum(1 for l in open(f"{w}/scan.jsonl") if '"render":{' in l)
print(f"pages of the main fleet that needed rendering: {main_needed}/{n}")
PY
