#!/usr/bin/env bash
# Sends a signed fossa.scan.completed webhook to the compliance dashboard, with retries.
#
# Usage: send-webhook.sh
# Environment:
#   COMPLIANCE_WEBHOOK_URL     e.g. https://compliance.example.com/api/webhooks/fossa-scan (required)
#   COMPLIANCE_WEBHOOK_SECRET  the shared secret (required; never printed)
#   REPO_URL, REPO_NAME, REVISION, BRANCH, SCAN_STATUS (passed|failed), ISSUES_FOUND (true|false)
#   PIPELINE_ID, PIPELINE_URL, PIPELINE_PROVIDER, TRIGGERED_BY, ACTOR, WEBHOOK_SOURCE (optional)
#   MAX_ATTEMPTS (default 4)
#
# The script never fails the pipeline: it exits 0 whatever happens and says what happened.
# Needs bash, curl, openssl and (for safe JSON escaping) python3 or jq.
set -u

url="${COMPLIANCE_WEBHOOK_URL:-}"
secret="${COMPLIANCE_WEBHOOK_SECRET:-}"
if [ -z "$url" ] || [ -z "$secret" ]; then
  echo "compliance webhook: COMPLIANCE_WEBHOOK_URL or COMPLIANCE_WEBHOOK_SECRET not set; skipping"
  exit 0
fi

json_string() {
  if command -v jq >/dev/null 2>&1; then jq -Rn --arg v "$1" '$v'
  else python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; fi
}
opt_field() { # name value -> ,"name":"value" when value is non-empty
  [ -n "$2" ] && printf ',"%s":%s' "$1" "$(json_string "$2")"
}

repo_url="${REPO_URL:?REPO_URL is required}"
revision="${REVISION:?REVISION is required}"
branch="${BRANCH:?BRANCH is required}"
status="${SCAN_STATUS:-passed}"
issues_found="${ISSUES_FOUND:-}"
now_iso="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

payload="{\"event\":\"fossa.scan.completed\",\"timestamp\":\"${now_iso}\""
payload+=",\"repository\":{\"url\":$(json_string "$repo_url")$(opt_field name "${REPO_NAME:-}")$(opt_field provider "${REPO_PROVIDER:-}")}"
scan="\"revision\":$(json_string "$revision"),\"branch\":$(json_string "$branch"),\"status\":$(json_string "$status")"
[ -n "$issues_found" ] && scan+=",\"issues_found\":${issues_found}"
payload+=",\"scan\":{${scan}}"
pipeline="$(opt_field id "${PIPELINE_ID:-}")$(opt_field url "${PIPELINE_URL:-}")$(opt_field provider "${PIPELINE_PROVIDER:-}")"
[ -n "$pipeline" ] && payload+=",\"pipeline\":{${pipeline#,}}"
metadata="$(opt_field triggered_by "${TRIGGERED_BY:-}")$(opt_field actor "${ACTOR:-}")"
[ -n "$metadata" ] && payload+=",\"metadata\":{${metadata#,}}"
payload+="}"

max="${MAX_ATTEMPTS:-4}"
delay=5
for attempt in $(seq 1 "$max"); do
  # A fresh timestamp and signature per attempt, so a retry after a long wait is never stale.
  ts="$(date +%s)"
  sig="$(printf '%s' "${ts}.${payload}" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.*= //')"
  body_file="$(mktemp)"
  code="$(curl -sS -o "$body_file" -w '%{http_code}' --max-time 20 -X POST "$url" \
    -H 'Content-Type: application/json' \
    -H "X-Webhook-Signature: sha256=${sig}" \
    -H "X-Webhook-Timestamp: ${ts}" \
    ${WEBHOOK_SOURCE:+-H "X-Webhook-Source: ${WEBHOOK_SOURCE}"} \
    --data-binary "$payload" 2>/dev/null || echo 000)"
  body="$(cat "$body_file")"; rm -f "$body_file"
  case "$code" in
    202)
      echo "compliance webhook: accepted (attempt ${attempt}): ${body}"
      exit 0 ;;
    429)
      wait_s="$(printf '%s' "$body" | sed -n 's/.*"retry_after"[^0-9]*\([0-9][0-9]*\).*/\1/p')"
      wait_s="${wait_s:-$((delay * attempt))}"
      [ "$wait_s" -gt 120 ] && wait_s=120
      echo "compliance webhook: rate limited, retrying in ${wait_s}s (attempt ${attempt}/${max})"
      sleep "$wait_s" ;;
    400|401|404|413|415)
      # Retrying cannot fix these: report and stop.
      echo "compliance webhook: refused with HTTP ${code}: ${body}"
      exit 0 ;;
    *)
      echo "compliance webhook: HTTP ${code} (attempt ${attempt}/${max}); retrying in $((delay * attempt))s"
      sleep $((delay * attempt)) ;;
  esac
done
echo "compliance webhook: not delivered after ${max} attempts; the dashboard's scheduled sync will catch up"
exit 0
