#!/usr/bin/env bash
# Installs what the test suite needs from the distribution's packages, when
# missing: redis-server (the tests start their own throw-away servers), jq,
# python3, oathtool and curl.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The API's end-to-end test computes TOTP codes with oathtool and drives the
# server with curl.
command -v oathtool >/dev/null 2>&1 || need+=(oathtool)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian package starts a server on 6379; the tests never use it.
redis-server --version
