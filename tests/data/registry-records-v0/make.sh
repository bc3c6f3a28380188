#!/bin/sh
# Make the fixture: a registry whose generic records (contacts, sessions, login challenges,
# pending registrations, reset tokens, contact changes, import authorisations, the outbox,
# notices, announcements and attachments) were written by a beian before typed records, when
# they were bare JSON (attachments: their raw bytes). Run with that release's binary:
#
#     tests/data/registry-records-v0/make.sh /path/to/old/beian OUT_DIR
#
# OUT_DIR/reg is the registry, OUT_DIR/fixture.json what the test needs to use it (the time it
# was made, the MIIT password, a session token, the pending login challenge's id).
set -eu
B=$1
OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
SEEDS=$HERE/../../../seeds/demo/filings.jsonl
R=$OUT/reg
API=127.0.0.1:${PORT:-18791}
MET=127.0.0.1:${MPORT:-18792}
mkdir -p "$OUT"
MADE_AT=$(date +%s)
PW=$("$B" registry init "$R" | sed -n 's/^MIIT password[^:]*: *\([^ ]*\)$/\1/p')
test -n "$PW"
"$B" --registry "$R" user set-contact miit --email miit@example.gov.cn >/dev/null
# The first filing approved (the second waits for its other provider): serve moves its
# approval notices to the outbox when it starts.
head -n 2 "$SEEDS" >"$OUT/two.jsonl"
"$B" --registry "$R" filing import "$OUT/two.jsonl" >/dev/null
"$B" --registry "$R" filing verify-access --provider 示例接入商 --all >/dev/null
"$B" --registry "$R" review --auto >/dev/null
rm "$OUT/two.jsonl"

"$B" --registry "$R" serve --listen "$API" --metrics-listen "$MET" >"$OUT/serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://$API/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
post() { # path json [token]
  if [ $# -ge 3 ]; then
    curl -fsS -X POST -H 'content-type: application/json' -H "authorization: Bearer $3" \
      --data "$2" "http://$API$1"
  else
    curl -fsS -X POST -H 'content-type: application/json' --data "$2" "http://$API$1"
  fi
}
last_code() { # address: the last six-digit code sent there
  "$B" --registry "$R" outbox --to "$1" --format json | tail -n 1 |
    sed -n 's/.*code[^0-9]*\([0-9]\{6\}\).*/\1/p' | head -n 1
}
login() { # username password → session token
  cid=$(post /api/login "{\"username\":\"$1\",\"password\":\"$2\"}" |
    sed -n 's/.*"challenge_id":"\([^"]*\)".*/\1/p')
  code=$(last_code "$3")
  post /api/login/verify "{\"challenge_id\":\"$cid\",\"code\":\"$code\"}" |
    sed -n 's/.*"token":"\([^"]*\)".*/\1/p'
}
TOKEN=$(login miit "$PW" miit@example.gov.cn)
test -n "$TOKEN"
# A bureau creates an ISP user and authorises it for import.
post /api/users '{"username":"jing_bureau","password":"bureau-pw-1","role":"bureau","province":"京","email":"bureau@example.gov.cn"}' "$TOKEN" >/dev/null
BT=$(login jing_bureau bureau-pw-1 bureau@example.gov.cn)
post /api/users '{"username":"isp_one","password":"isp-pw-001","role":"isp","name":"示例接入商","mobile":"13900000001"}' "$BT" >/dev/null
post /api/users/isp_one/import-authorisation '{"authorised":true}' "$BT" >/dev/null
# An announcement with an attachment that is not text.
AID=$(post /api/announcements '{"title":"备案系统升级通知","body":"系统将于周六升级。","category":"notice"}' "$TOKEN" |
  sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -n 1)
head -c 3000 /dev/urandom >"$OUT/attachment.bin"
curl -fsS -X POST -H "authorization: Bearer $TOKEN" -H 'content-type: application/octet-stream' \
  --data-binary @"$OUT/attachment.bin" "http://$API/api/announcements/$AID/attachments?filename=form.bin" >/dev/null
# Left pending: a self-registration, a contact change, a password reset and a login challenge.
post /api/register '{"username":"wang_wu","password":"secret-pw1","mobile":"13700000009","email":"ww@example.com"}' >/dev/null
post /api/me/contact '{"mobile":"13800000077"}' "$TOKEN" >/dev/null
post /api/password/reset-request '{"username":"miit"}' >/dev/null
CID=$(post /api/login '{"username":"miit","password":"'"$PW"'"}' |
  sed -n 's/.*"challenge_id":"\([^"]*\)".*/\1/p')
kill $SERVE
wait $SERVE || true
trap - EXIT
# The second filing's other provider verifies it: its approval notice waits in the store.
"$B" --registry "$R" filing verify-access --provider 华北云 --all >/dev/null
"$B" --registry "$R" review --auto >/dev/null
"$B" --registry "$R" outbox --format json >"$OUT/outbox.jsonl"
cat >"$OUT/fixture.json" <<EOF
{"made_at": $MADE_AT, "miit_password": "$PW", "session_token": "$TOKEN", "challenge_id": "$CID", "announcement": "$AID"}
EOF
rm -rf "$OUT/serve.log" "$R/serve.json" "$R/serve.pid" "$R/serve-snapshot.bin" "$R/scans"
