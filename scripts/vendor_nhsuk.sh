#!/usr/bin/env bash
# Vendor the NHS.UK frontend (compiled CSS, JS bundle, icons) into workflow_app/static/nhsuk/.
# Pages load these from our own server: no CDN at run time. Re-run to change version.
set -euo pipefail
VERSION="${1:-10.6.1}"
here="$(cd "$(dirname "$0")/.." && pwd)"
target="$here/workflow_app/static/nhsuk"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "nhsuk-frontend@$VERSION" --silent >/dev/null && tar xzf "nhsuk-frontend-$VERSION.tgz")
dist="$work/package/dist/nhsuk"
rm -rf "$target"
mkdir -p "$target/assets/images"
cp "$dist/nhsuk-frontend.min.css" "$target/nhsuk-frontend.min.css"
cp "$dist/nhsuk-frontend.min.js" "$target/nhsuk-frontend.min.js"
cp "$dist/assets/images/"*.svg "$dist/assets/images/favicon.ico" "$dist/assets/images/nhsuk-icon-180.png" \
   "$target/assets/images/"
# The compiled CSS refers to source maps we do not ship; drop the reference.
sed -i 's#/\*\# sourceMappingURL=.*\*/##' "$target/nhsuk-frontend.min.css"
sed -i 's#//\# sourceMappingURL=.*##' "$target/nhsuk-frontend.min.js"
# Icons: make the CSS's absolute /assets/ paths relative to the stylesheet. Fonts: the
# Frutiger web fonts live on a remote host, which our Content-Security-Policy forbids, so
# their @font-face rules are removed and the stack falls back to Arial.
perl -0pi -e 's#url\(/assets/#url(assets/#g; s#\@font-face\{[^}]*assets\.nhs\.uk[^}]*\}##g' \
  "$target/nhsuk-frontend.min.css"
cp "$work/package/LICENSE"* "$target/" 2>/dev/null || true
echo "$VERSION" > "$target/VERSION"
echo "Vendored nhsuk-frontend $VERSION into $target ($(du -sh "$target" | cut -f1))"
