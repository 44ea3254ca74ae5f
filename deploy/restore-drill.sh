#!/usr/bin/env bash
# The restore drill of docs/backups.md: proves that a backup of the database, with the root key kept elsewhere,
# gives back a working vault. It
#   1. backs the database up (SQLite: sqlite3 .backup, online; PostgreSQL: pg_dump --format=custom);
#   2. restores the backup into a fresh database (a new file; a new PostgreSQL database on the same server or the
#      one DRILL_ADMIN_URL names), never touching the source;
#   3. runs `cdvault audit verify` on the restored copy;
#   4. starts `cdvault serve` on it (127.0.0.1, a free port) with the root key, issues DRILL_SELLER's API credential
#      (audited, purpose "restore drill"), stops it;
#   5. runs `cdvault audit verify` again (the drill's own event included), prints the timings, and drops the
#      restored copy (DRILL_KEEP=1 keeps it).
# Exit status 0 only when every step passed. The password issued is checked, never printed.
#
# Settings (environment), besides the CDVAULT_* configuration of the vault you drill (JWT, root key):
#   CDVAULT_BIN          the cdvault binary (default: cdvault on PATH)
#   CDVAULT_DATABASE_URL the database to back up: sqlite://<path>[?...] or postgres://...
#   CDVAULT_ROOT_KEY_FILE or CDVAULT_ROOT_KEY: the root key, from where you keep it (never beside the backup)
#   DRILL_SELLER         the login of a seller with a stored Marketplace API password
#   DRILL_TOKEN          a token with credentials:read on DRILL_SELLER; without it, one is minted with
#                        `cdvault token` (needs CDVAULT_JWT_HS256_SECRET)
#   DRILL_ADMIN_URL      PostgreSQL only: a URL on the server that receives the copy, allowed to CREATE DATABASE
#                        (default: CDVAULT_DATABASE_URL with the database `postgres`)
#   DRILL_WORK_DIR       where the backup and logs go (default: a new temporary directory, removed at the end)
set -euo pipefail

bin=${CDVAULT_BIN:-cdvault}
source_url=${CDVAULT_DATABASE_URL:?'set CDVAULT_DATABASE_URL to the database to back up'}
seller=${DRILL_SELLER:?'set DRILL_SELLER to a seller with a stored API password'}
if [ -z "${CDVAULT_ROOT_KEY_FILE:-}" ] && [ -z "${CDVAULT_ROOT_KEY:-}" ]; then
  echo "restore drill: set CDVAULT_ROOT_KEY_FILE (or CDVAULT_ROOT_KEY): a backup alone must not open the vault" >&2
  exit 2
fi
work=${DRILL_WORK_DIR:-}
own_work=false
if [ -z "$work" ]; then
  work=$(mktemp -d)
  own_work=true
fi
mkdir -p "$work"
chmod 700 "$work"

restored_url=''
pg_admin=''
pg_name=''
server_pid=''
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "$pg_name" ] && [ "${DRILL_KEEP:-0}" != 1 ]; then
    psql -q -X -v ON_ERROR_STOP=1 "$pg_admin" -c "DROP DATABASE IF EXISTS \"$pg_name\" WITH (FORCE)" >/dev/null || true
  fi
  if $own_work && [ "${DRILL_KEEP:-0}" != 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

fail() {
  echo "restore drill FAILED: $*" >&2
  exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# The drill's own server must not write to production's sinks nor take its ports.
unset CDVAULT_AUDIT_STREAM CDVAULT_METRICS_LISTEN CDVAULT_LISTEN CDVAULT_CONFIG

# ---- 1. back up, 2. restore ----------------------------------------------------------------------------------------
started=$(now)
case "$source_url" in
  sqlite:*)
    path=${source_url#sqlite://}
    path=${path#sqlite:}
    path=${path%%\?*}
    [ -f "$path" ] || fail "no SQLite database at $path"
    # .backup copies a consistent snapshot while servers keep writing (the WAL included).
    sqlite3 "$path" ".backup '$work/backup.db'" || fail "sqlite3 .backup of $path"
    backup_seconds=$(since "$started")
    started=$(now)
    mkdir -p "$work/restored"
    cp "$work/backup.db" "$work/restored/cdvault.db"
    [ "$(sqlite3 "$work/restored/cdvault.db" 'PRAGMA integrity_check')" = ok ] || fail "the restored copy is damaged"
    restored_url="sqlite://$work/restored/cdvault.db?mode=rw"
    ;;
  postgres:* | postgresql:*)
    base=${source_url%%\?*}
    query=''
    case "$source_url" in *\?*) query="?${source_url#*\?}" ;; esac
    pg_admin=${DRILL_ADMIN_URL:-${base%/*}/postgres$query}
    # One consistent snapshot (a repeatable-read transaction), in the custom format pg_restore reads.
    pg_dump --format=custom --no-owner --file "$work/backup.dump" "$source_url" || fail "pg_dump"
    backup_seconds=$(since "$started")
    started=$(now)
    pg_name="cdvault_restore_drill_$(date +%Y%m%d%H%M%S)_$$"
    psql -q -X -v ON_ERROR_STOP=1 "$pg_admin" -c "CREATE DATABASE \"$pg_name\"" >/dev/null || fail "CREATE DATABASE"
    admin_base=${pg_admin%%\?*}
    admin_query=''
    case "$pg_admin" in *\?*) admin_query="?${pg_admin#*\?}" ;; esac
    restored_url="${admin_base%/*}/$pg_name$admin_query"
    pg_restore --no-owner --exit-on-error --dbname "$restored_url" "$work/backup.dump" || fail "pg_restore"
    ;;
  *) fail "CDVAULT_DATABASE_URL must start with sqlite: or postgres:" ;;
esac
restore_seconds=$(since "$started")
echo "backup: ${backup_seconds}s, restore: ${restore_seconds}s, into a fresh database (the source is not touched)"

export CDVAULT_DATABASE_URL="$restored_url"

# ---- 3. the restored trail verifies ----------------------------------------------------------------------------
"$bin" audit verify >"$work/verify-before.txt" 2>&1 || { cat "$work/verify-before.txt" >&2; fail "audit verify of the restored copy"; }
sed 's/^/  /' "$work/verify-before.txt"

# ---- 4. a server on the copy issues a credential ---------------------------------------------------------------
started=$(now)
CDVAULT_LISTEN=127.0.0.1:0 "$bin" serve >"$work/serve.out" 2>"$work/serve.log" &
server_pid=$!
address=''
for _ in $(seq 1 300); do
  address=$(sed -n 's|.*listening on http://\([^/]*\)/graphql.*|\1|p' "$work/serve.log" | head -n 1)
  [ -n "$address" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; fail "cdvault serve stopped on the restored copy"; }
  sleep 0.1
done
[ -n "$address" ] || fail "cdvault serve did not listen within 30 s"

token=${DRILL_TOKEN:-}
if [ -z "$token" ]; then
  token=$("$bin" token --sub restore-drill --scope credentials:read --sellers "$seller" --ttl 10m) \
    || fail "no DRILL_TOKEN and cdvault token could not mint one"
fi
body=$(printf '{"query":"mutation($s: String!) { issueApiCredential(sellerLogin: $s, purpose: \\"restore drill\\") { apiLogin version password } }","variables":{"s":"%s"}}' "$seller")
answer=$(curl -sS --max-time 30 "http://$address/graphql" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' --data-binary "$body") || fail "no answer from the restored server"
# The answer holds the password: checked here, never printed. An error's message and code are safe to show.
if ! printf '%s' "$answer" | grep -q '"password":"[^"]'; then
  printf '%s' "$answer" | grep -o '"code":"[A-Z_]*"' >&2 || true
  fail "issueApiCredential($seller) gave no password on the restored copy"
fi
issue_seconds=$(since "$started")
api_login=$(printf '%s' "$answer" | sed -n 's/.*"apiLogin":"\([^"]*\)".*/\1/p')
echo "issued $api_login's credential on the restored copy ${issue_seconds}s after starting the server"
kill -TERM "$server_pid"
wait "$server_pid" || fail "the restored server did not stop cleanly"
server_pid=''

# ---- 5. the trail, with the drill's own events, still verifies ------------------------------------------------
"$bin" audit verify >"$work/verify-after.txt" 2>&1 || { cat "$work/verify-after.txt" >&2; fail "audit verify after the issue"; }
sed 's/^/  /' "$work/verify-after.txt"
echo "restore drill OK: backup ${backup_seconds}s, restore ${restore_seconds}s, first issue ${issue_seconds}s after start"
