# Sourced by bin/run and bin/test: make sure uv is available, installing it from PyPI if not.
if ! uv --version >/dev/null 2>&1 && ! python3 -m uv --version >/dev/null 2>&1; then
  echo "Installing uv from PyPI..." >&2
  python3 -m pip install --quiet uv 2>/dev/null \
    || python3 -m pip install --quiet --user uv 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages uv
fi
if uv --version >/dev/null 2>&1; then UV=(uv); else UV=(python3 -m uv); fi
# Precompiled bytecode: importing LiteLLM from source costs tens of seconds.
export UV_COMPILE_BYTECODE=1
