#!/usr/bin/env bash
# bazel test //... offline (Debian's bazel-bootstrap 4.2.3): the three repositories Bazel would
# download are replaced by the local stand-ins in third_party/bazel, and Python is .venv's.
# With --build_only, every target is built and no test runs (CI: pytest has just run them).
set -euo pipefail
cd "$(dirname "$0")"
here="$(pwd)"
[ -x .venv/bin/python ] || { echo "run ./setup.sh first" >&2; exit 1; }
common=(
  --override_repository=rules_cc="$here/third_party/bazel/rules_cc"
  --override_repository=rules_java="$here/third_party/bazel/rules_java"
  --override_repository=remote_coverage_tools="$here/third_party/bazel/remote_coverage_tools"
  --incompatible_use_python_toolchains=false --python_path="$here/.venv/bin/python"
)
if [ "${1:-}" = "--build_only" ]; then
  shift
  exec bazel build //... "${common[@]}" "$@"
fi
exec bazel test //... "${common[@]}" \
  --test_env=KERAS_PAPERS_DATA_DIR --test_env=HOME --test_env=TF_CPP_MIN_LOG_LEVEL \
  --test_output=errors --local_test_jobs=1 "$@"
