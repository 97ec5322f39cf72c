#!/bin/sh
# Writes the `.env` that docker-compose.yml reads, beside it: random passwords, an API key with
# every scope, and COMPOSE_PROFILES=gpu or cpu depending on whether this host's Docker can give
# containers an NVIDIA GPU. Then `docker compose up` needs no flags and no service list.
#
#   sh deploy/compose/setup.sh            # from the repository root; never overwrites a value
#   sh deploy/compose/setup.sh --print    # prints what it would add, writes nothing
#
# A variable already in .env is kept as it is; only missing ones are added (so it also brings an
# older .env up to date after an upgrade). Force a profile with COMPOSE_PROFILES=cpu sh setup.sh.
set -eu

cd "$(dirname "$0")/../.."
ENV_FILE=${ENV_FILE:-.env}
PRINT=no
[ "${1:-}" = --print ] && PRINT=yes

secret() {
  if command -v openssl >/dev/null 2>&1; then
    openssl rand -hex 32
  else
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
  fi
}

# gpu only if both the driver (nvidia-smi lists a GPU) and the NVIDIA Container Toolkit
# (nvidia-container-cli, which Docker's `driver: nvidia` device requests go through) are here:
# with the driver alone, `docker compose up` fails with "could not select device driver".
detect_profile() {
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    if command -v nvidia-container-cli >/dev/null 2>&1; then
      echo gpu
      return
    fi
    echo "setup: an NVIDIA GPU is here but not the NVIDIA Container Toolkit (nvidia-container-cli);" >&2
    echo "setup: using the CPU worker. Install the toolkit, then set COMPOSE_PROFILES=gpu in $ENV_FILE." >&2
  fi
  echo cpu
}

has() { [ -f "$ENV_FILE" ] && grep -q "^$1=" "$ENV_FILE"; }

added=""
add() {
  if has "$1"; then return; fi
  added="$added $1"
  if [ "$PRINT" = yes ]; then
    case "$1" in *PASSWORD | API_KEYS) echo "$1=<random>" ;; *) echo "$1=$2" ;; esac
  else
    # umask: the file holds passwords; only its owner reads it.
    (umask 077 && printf '%s=%s\n' "$1" "$2" >>"$ENV_FILE")
  fi
}

profile=${COMPOSE_PROFILES:-$(detect_profile)}
# Compose would create a missing DATA_DIR (default ./data) itself, owned by root.
[ "$PRINT" = yes ] || mkdir -p "${DATA_DIR:-data}"
add COMPOSE_PROFILES "$profile"
add POSTGRES_PASSWORD "$(secret)"
add POSTGRES_APP_PASSWORD "$(secret)"
add REDIS_PASSWORD "$(secret)"
add API_KEYS "gq_$(secret)"

if [ "$PRINT" = yes ]; then exit 0; fi
if [ -z "$added" ]; then
  echo "setup: $ENV_FILE already has every setting; nothing changed"
else
  echo "setup: wrote$added to $ENV_FILE"
fi
echo "setup: worker profile: $(grep '^COMPOSE_PROFILES=' "$ENV_FILE" | cut -d= -f2-)"
echo "setup: your API key is API_KEYS in $ENV_FILE (export GQ_API_KEY=\$(grep ^API_KEYS= $ENV_FILE | cut -d= -f2 | cut -d, -f1))"
echo "setup: next: docker compose up   (the API: http://127.0.0.1:8080 unless API_PORT says otherwise)"
