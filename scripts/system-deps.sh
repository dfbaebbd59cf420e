#!/usr/bin/env bash
# Install the system packages genverify's report and tests use, when they are missing.
#
#   scripts/system-deps.sh [tex] [browser]      (default: both)
#
#   tex      latexmk, pdflatex and the LaTeX packages report/templates uses
#            (Debian: texlive-latex-base, texlive-latex-recommended, latexmk,
#            lmodern), and pdftotext (poppler-utils) for the report's tests
#   browser  chromium and chromedriver, for the browser tests of report.html
#
# `make report`, `make test` and `.ci/run` (through `make test`) all call this
# script. With everything present it does nothing. Otherwise, on a machine
# with apt-get, it installs what is missing: directly as root, or through
# `sudo -n` when that works without a password. Where neither is possible, or
# the install fails, it says so in one line and exits 0: the caller goes on
# (the report is then HTML only; the tests that need TeX or a browser skip,
# except under CI=true, where they fail).
set -u

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(tex browser)

have() { command -v "$1" >/dev/null 2>&1; }
has_sty() { have kpsewhich && [ -n "$(kpsewhich "$1.sty" 2>/dev/null)" ]; }

need=()
for group in "${want[@]}"; do
    case "$group" in
        tex)
            have pdflatex && has_sty amsmath && has_sty hyperref && has_sty geometry \
                || need+=(texlive-latex-base)
            has_sty booktabs && has_sty microtype && has_sty xcolor || need+=(texlive-latex-recommended)
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
    echo "system-deps: missing $what and no apt-get here; install them to get the PDF report and run every test" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo_=()
elif have sudo && sudo -n true 2>/dev/null; then
    sudo_=(sudo -n)
else
    echo "system-deps: missing $what; not root and sudo needs a password, so skipped (install them yourself: sudo apt-get install $what)" >&2
    exit 0
fi
echo "system-deps: installing $what (apt-get) ..." >&2
export DEBIAN_FRONTEND=noninteractive
if "${sudo_[@]}" apt-get update -qq >/dev/null 2>&1 \
        && "${sudo_[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
    echo "system-deps: installed $what" >&2
else
    echo "system-deps: could not install $what (apt-get failed; offline?); going on without them" >&2
fi
exit 0
