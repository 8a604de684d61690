#!/usr/bin/env bash
# Vendor the NHS.UK frontend (compiled CSS, the JS bundle, icons) into workflow_app/static/nhsuk/.
# Pages load these from our own server: no CDN at run time. Idempotent: re-run to refresh,
# or pass another version (e.g. scripts/vendor_nhsuk.sh 10.6.1) to change it.
#
# Only what the pages need is kept: no source maps, Sass, Nunjucks or per-component JS.
set -euo pipefail

VERSION="${1:-10.6.1}"
here="$(cd "$(dirname "$0")/.." && pwd)"
target="$here/workflow_app/static/nhsuk"

for tool in npm tar perl; do
  command -v "$tool" >/dev/null || { echo "vendor_nhsuk: needs $tool" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "nhsuk-frontend@$VERSION" --silent >/dev/null && tar xzf "nhsuk-frontend-$VERSION.tgz")
package="$work/package"
dist="$package/dist/nhsuk"
got="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$package/package.json")"
[ "$got" = "$VERSION" ] || { echo "vendor_nhsuk: asked for $VERSION, npm gave $got" >&2; exit 1; }
for file in nhsuk-frontend.min.css nhsuk-frontend.min.js assets/images/favicon.ico; do
  [ -f "$dist/$file" ] || { echo "vendor_nhsuk: $file missing from the package's dist/" >&2; exit 1; }
done

rm -rf "$target"
mkdir -p "$target/assets/images"
cp "$dist/nhsuk-frontend.min.css" "$dist/nhsuk-frontend.min.js" "$target/"
# Icons the CSS refers to, favicons, the mask icon and the apple-touch icon. (No web fonts
# are shipped: the CSS loads Frutiger from assets.nhs.uk, dealt with below.)
cp "$dist/assets/images/"*.svg "$dist/assets/images/favicon.ico" "$dist/assets/images/nhsuk-icon-180.png" \
   "$target/assets/images/"

# We ship no source maps, so drop the references to them.
sed -i 's#/\*\# sourceMappingURL=.*\*/##' "$target/nhsuk-frontend.min.css"
sed -i 's#//\# sourceMappingURL=.*##' "$target/nhsuk-frontend.min.js"
# Icons: make the CSS's absolute /assets/ paths relative to the stylesheet. Fonts: the
# Frutiger web fonts live on a remote host, which our Content-Security-Policy forbids, so
# their @font-face rules are removed and the font stack falls back to Arial.
perl -0pi -e 's#url\(/assets/#url(assets/#g; s#\@font-face\{[^}]*assets\.nhs\.uk[^}]*\}##g' \
  "$target/nhsuk-frontend.min.css"
if grep -Eq 'url\(["'"'"']?(https?:)?//' "$target/nhsuk-frontend.min.css"; then
  echo "vendor_nhsuk: the CSS still refers to a remote URL; check the font rewrite" >&2
  exit 1
fi

echo "$VERSION" > "$target/VERSION"
cat > "$target/LICENCE.txt" <<EOF
nhsuk-frontend $VERSION (https://github.com/nhsuk/nhsuk-frontend), from npm.
The code is released under the MIT Licence; the NHS logo and identity belong to NHS England.
Vendored by scripts/vendor_nhsuk.sh: minified CSS (remote font rules removed, icon paths made
relative), the minified ES module bundle, and icons from dist/nhsuk/assets/images.
EOF
echo "Vendored nhsuk-frontend $VERSION into $target ($(du -sh "$target" | cut -f1))"
