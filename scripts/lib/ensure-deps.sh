# Installs what Sidobot needs beyond the Swift toolchain, only if it is missing.
# Sourced by scripts/test and scripts/demo. Debian/Ubuntu (apt-get); runs as root or through sudo.

ensure_deps() {
  local missing=()
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  if ! pkg-config --exists lua5.4 2>/dev/null; then missing+=(liblua5.4-dev); fi
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi

  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "error: missing packages (${missing[*]}) and not root; install them with apt-get" >&2
      return 2
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing packages (${missing[*]}) and no apt-get; install Lua 5.4 headers and pkg-config by hand" >&2
    return 2
  fi
  echo "installing: ${missing[*]}" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
