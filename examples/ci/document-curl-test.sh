#!/usr/bin/env bash
# The workflow document's "Manual Test with cURL", unchanged except that the URL and secret may
# be overridden (COMPLIANCE_URL, SECRET). With the demo server (`--webhook-secrets
# your-webhook-secret`) it answers 202.

# Generate signature
TIMESTAMP=$(date +%s)
PAYLOAD='{"event":"fossa.scan.completed","repository":{"url":"https://github.com/acme/payment-service"},"scan":{"revision":"abc123","branch":"main","status":"passed"}}'
SECRET="${SECRET:-your-webhook-secret}"
SIGNATURE=$(echo -n "${TIMESTAMP}.${PAYLOAD}" | openssl dgst -sha256 -hmac "${SECRET}" | cut -d' ' -f2)

# Send webhook
curl -X POST "${COMPLIANCE_URL:-http://localhost:3000}/api/webhooks/fossa-scan" \
  -H "Content-Type: application/json" \
  -H "X-Webhook-Signature: sha256=${SIGNATURE}" \
  -H "X-Webhook-Timestamp: ${TIMESTAMP}" \
  -d "${PAYLOAD}"
