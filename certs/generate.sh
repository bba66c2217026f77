#!/bin/sh
# Makes a CA and an ECDSA P-256 serving certificate for the webhook's Service, then
# writes what deploy/overlays/self-signed needs: the serving Secret (tls-secret.yaml)
# and the patch that fills caBundle in both webhook configurations (cabundle-patch.yaml).
#
# Renewal: run it again. The CA is kept (clusters keep trusting the caBundle they have)
# and only the serving certificate is replaced; --new-ca replaces the CA too.
# Nothing it writes belongs in git: keys stay in --out (default certs/generated/).
#
# Usage: certs/generate.sh [--service NAME] [--namespace NS] [--out DIR] [--overlay DIR]
#                          [--days N] [--new-ca]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
service=atlas-stream-webhook
namespace=atlas-stream-webhook
out="$here/generated"
overlay="$here/../deploy/overlays/self-signed"
days=365
ca_days=3650
new_ca=0

while [ $# -gt 0 ]; do
  case "$1" in
    --service) service=$2; shift 2 ;;
    --namespace) namespace=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --overlay) overlay=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --new-ca) new_ca=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

umask 077
mkdir -p "$out" "$overlay"

if [ "$new_ca" = 1 ] || [ ! -f "$out/ca.crt" ] || [ ! -f "$out/ca.key" ]; then
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -keyout "$out/ca.key" -out "$out/ca.crt" -days "$ca_days" -subj "/CN=$service-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  echo "made CA $out/ca.crt"
else
  echo "kept CA $out/ca.crt"
fi

cat > "$out/serving.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:$service,DNS:$service.$namespace,DNS:$service.$namespace.svc,DNS:$service.$namespace.svc.cluster.local
EOF
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
  -keyout "$out/tls.key" -out "$out/tls.csr" -subj "/CN=$service.$namespace.svc" 2>/dev/null
openssl x509 -req -sha256 -in "$out/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
  -CAserial "$out/ca.srl" -days "$days" -extfile "$out/serving.ext" -out "$out/tls.crt" 2>/dev/null
rm -f "$out/tls.csr" "$out/serving.ext"
openssl verify -CAfile "$out/ca.crt" "$out/tls.crt" >/dev/null
echo "made serving certificate $out/tls.crt for $service.$namespace.svc"

b64() { openssl base64 -A < "$1"; }
umask 022
cat > "$overlay/tls-secret.yaml" <<EOF
# Written by certs/generate.sh; do not commit.
apiVersion: v1
kind: Secret
metadata:
  name: atlas-stream-webhook-tls
type: kubernetes.io/tls
data:
  tls.crt: $(b64 "$out/tls.crt")
  tls.key: $(b64 "$out/tls.key")
  ca.crt: $(b64 "$out/ca.crt")
EOF
ca_bundle=$(b64 "$out/ca.crt")
cat > "$overlay/cabundle-patch.yaml" <<EOF
# Written by certs/generate.sh; do not commit.
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: atlas-stream-webhook
webhooks:
  - name: mutate.atlas-stream-webhook.atlas.mongodb.com
    clientConfig:
      caBundle: $ca_bundle
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: atlas-stream-webhook
webhooks:
  - name: validate.atlas-stream-webhook.atlas.mongodb.com
    clientConfig:
      caBundle: $ca_bundle
EOF
echo "wrote $overlay/tls-secret.yaml and $overlay/cabundle-patch.yaml"
