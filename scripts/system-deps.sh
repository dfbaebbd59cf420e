#!/usr/bin/env bash
# Install the system packages genverify's report and tests use, when they are missing.
#
#   scripts/system-deps.sh [tex] [browser]      (default: both)
#
#   tex      latexmk, pdflatex and the LaTeX packages report/templates/report.tex.j2 uses
#            (Debian: texlive-latex-base, texlive-latex-recommended, latexmk, lmodern),
#            and pdftotext (poppler-utils) for the report's tests
#   browser  chromium and chromedriver, for the browser tests of report.html
#
# `make report`, `make test` and `.ci/run` (through `make test`) all call this script.
# With everything present it does nothing and prints nothing. Otherwise, on a machine
# with apt-get, it installs what is missing: directly as root, or through `sudo -n`
# when that works without a password. Where neither is possible, or the install
# fails, it says so in one line on stderr and exits 0: the caller goes on (the report
# is then HTML only; the tests that need TeX or a browser skip, except under CI=true,
# where they fail).
set -u

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(tex browser)

have() { command -v "$1" >/dev/null 2>&1; }
has_sty() { have kpsewhich && [ -n "$(kpsewhich "$1.sty" 2>/dev/null)" ]; }
has_all_sty() { local s; for s in "$@"; do has_sty "$s" || return 1; done; }

need=()
for group in "${want[@]}"; do
    case "$group" in
        tex)
            { have pdflatex && has_all_sty amsmath hyperref geometry longtable tabularx; } \
                || need+=(texlive-latex-base)
            has_all_sty booktabs microtype xcolor float caption || need+=(texlive-latex-recommended)
            has_sty lmodern || need+=(lmodern)
            have latexmk || need+=(latexmk)
            have pdftotext || need+=(poppler-utils)
            ;;
        browser)
            have chromium || have chromium-browser || need+=(chromium)
            have chromedriver || need+=(chromium-driver)
            ;;
        *)
            echo "system-deps: unknown group '$group' (expected tex or browser)" >&2
            exit 2
            ;;
    esac
done
[ ${#need[@]} -eq 0 ] && exit 0

what="${need[*]}"
if ! have apt-get; then
    echo "system-deps: missing $what and no apt-get here; install them for the PDF report and every test (going on without them)" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif have sudo && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    why=$(have sudo && echo "sudo needs a password" || echo "no sudo")
    echo "system-deps: missing $what; not root and $why, so not installed (as root: apt-get install $what; going on without them)" >&2
    exit 0
fi
echo "system-deps: installing $what (apt-get) ..." >&2
log=$(mktemp "${TMPDIR:-/tmp}/system-deps.XXXXXX")
# env, not export: sudo resets the environment. Wait for another apt-get to release its lock.
apt=(${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120)
if "${apt[@]}" update -qq >"$log" 2>&1 \
        && "${apt[@]}" install -y -qq --no-install-recommends "${need[@]}" >>"$log" 2>&1; then
    echo "system-deps: installed $what" >&2
else
    echo "system-deps: could not install $what (apt-get failed: $(grep -E '^(E|W):' "$log" | tail -n 1 | cut -c1-160)); going on without them" >&2
fi
rm -f "$log"
exit 0
