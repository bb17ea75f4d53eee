#!/usr/bin/env bash
# Renders the current HTML report of a pipeline in headless Chromium (Debian package
# `chromium`), checks that the browser built the charts and tables, and saves a screenshot.
#
#   contrib/check-report-html.sh pipelines/sample.toml [screenshot.png]
#
# Needs a registry and reports (`terpadu run PIPELINE`). Exits non-zero when the page does not
# render as expected.
set -euo pipefail
pipeline=${1:?usage: contrib/check-report-html.sh PIPELINE [SCREENSHOT]}
shot=${2:-report-screenshot.png}
terpadu=${TERPADU:-terpadu}
browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$browser" ]]; then
  echo "chromium is not installed (apt-get install chromium)" >&2
  exit 3
fi
name=$(grep -m1 '^name *=' "$pipeline" | sed 's/^name *= *"\(.*\)".*/\1/')
workspace=${WORKSPACE:-$(dirname "$pipeline")/../workspace/$name}
version=$(sed -n 's/.*"version": *"\(.*\)".*/\1/p' "$workspace/registry/_current.json")
page="$workspace/reports/$version/terpadu-report.html"
[[ -f "$page" ]] || { echo "no report at $page; run: $terpadu run $pipeline" >&2; exit 1; }
url="file://$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars)
dom=$(timeout 60 "$browser" "${flags[@]}" --dump-dom "$url" 2>/dev/null)
for expected in '<svg' 'Overlap between programs' 'Inclusion errors' 'Exclusion errors' '<table id="t0"'; do
  if ! grep -qF "$expected" <<<"$dom"; then
    echo "the rendered page lacks: $expected" >&2
    exit 1
  fi
done
timeout 60 "$browser" "${flags[@]}" --window-size=1280,2400 --screenshot="$shot" "$url" >/dev/null 2>&1
echo "rendered $page in $(basename "$browser"); screenshot: $shot"
