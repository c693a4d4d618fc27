#!/usr/bin/env bash
# The GPU check of issue 21 (scripts/gpu_check.py says what it measures), in one command.
#
#   bash scripts/gpu_check.sh pack   # here, once: copy the pure-Python packages the GPU image
#                                    # lacks into .gpu_site/ (ignored by git), to carry there
#   bash scripts/gpu_check.sh        # there: $OUT/gpu_check.json and $OUT/gpu_check.log
#
# On the GPU machine the packages come from .whl/ (../shared/device/fetch-wheels.sh, needs a
# registry) or from .gpu_site/ (pack); the check stops in one line when one is missing.
# Extra arguments go to scripts/gpu_check.py (e.g. --budget-s 300, --parts vit,raprivacy).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ "${1:-}" = pack ]; then
  site=$(python3 -c 'import mmengine, os; print(os.path.dirname(os.path.dirname(mmengine.__file__)))')
  exclude="$(git rev-parse --git-common-dir)/info/exclude"
  grep -qx '/.gpu_site/' "$exclude" 2>/dev/null || echo '/.gpu_site/' >> "$exclude"
  rm -rf .gpu_site && mkdir -p .gpu_site
  # mmengine, mmcv-lite and mmaction2 and what they import that the GPU image may lack; all
  # pure Python (checked below), so Python 3.11's copies run on the image's 3.12
  for pkg in mmengine mmcv mmaction addict yapf yapf_third_party termcolor platformdirs rich markdown_it mdurl pygments einops; do
    if [ -d "$site/$pkg" ]; then cp -r "$site/$pkg" .gpu_site/; fi
  done
  find .gpu_site -name '__pycache__' -prune -exec rm -rf {} +
  rm -rf .gpu_site/mmaction/.mim .gpu_site/mmaction/configs 2>/dev/null || true
  if find .gpu_site -name '*.so' | grep -q .; then
    echo "gpu_check: pack: compiled extensions in .gpu_site ($(find .gpu_site -name '*.so' | head -1)): they would not load on Python 3.12" >&2
    exit 2
  fi
  du -sh .gpu_site
  echo "carry .gpu_site with the run (run tool: carry=[\".gpu_site\"])"
  exit 0
fi

: "${OUT:?gpu_check: set OUT to the folder for gpu_check.json}"
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .site .whl/*.whl
  export PYTHONPATH="$top/.site:$top${PYTHONPATH:+:$PYTHONPATH}"
elif [ -d .gpu_site ]; then
  export PYTHONPATH="$top/.gpu_site:$top${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$top${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export BENCH_CACHE="${BENCH_CACHE:-/tmp/bench_cache}"
# 480 s: the issue's 8 minutes; the script starts no row after --budget-s (420 s by default)
set -o pipefail
timeout 480 python3 scripts/gpu_check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
