#!/usr/bin/env bash
# lint: the docs keep up with the code. Every option `p2pd --help` lists is
# in the config example (as "#key = ..."), p2pd's man page and the README;
# every command `p2pctl --help` lists is in p2pctl's man page, its bash
# completion and the README. Prints what is missing; exit 1 if anything is.
#
#   docs_in_step.sh SOURCE_DIR P2PD P2PCTL
set -euo pipefail
SRC=$1
P2PD=$2
P2PCTL=$3
missing=0
miss() {
  echo "docs_in_step: $1"
  missing=1
}

options=$("$P2PD" --help | grep -oE '^ +(-[a-zA-Z] \[ )?--[a-z][a-z-]+' | grep -oE -- '--[a-z][a-z-]+' | sort -u)
[[ $(echo "$options" | wc -l) -ge 15 ]] || miss "p2pd --help lists too few options: $options"
for option in $options; do
  key=${option#--}
  man_form=${option//-/\\-}
  grep -qF -- "$man_form" "$SRC/doc/man/p2pd.8" || miss "p2pd.8 does not document $option"
  case $key in
    help | version) ;;  # the usual two, not in the README's table
    *) grep -qF -- "\`$option" "$SRC/README.md" || miss "README.md does not document $option" ;;
  esac
  case $key in
    help | version | config) ;;  # command line only
    *) grep -qE "^#$key = " "$SRC/config/p2pd.conf.example" || miss "p2pd.conf.example has no '#$key = ' line" ;;
  esac
done

commands=$("$P2PCTL" --help | sed -n '/^Commands:/,/^Options:/p' | grep -oE '^  [a-z]+' | tr -d ' ' | sort -u)
[[ $(echo "$commands" | wc -l) -ge 15 ]] || miss "p2pctl --help lists too few commands: $commands"
completion_commands=$(sed -n 's/.*local commands="\([^"]*\)".*/\1/p' "$SRC/packaging/p2pctl.bash-completion")
for command in $commands; do
  grep -qE "^\.B(I)? \"?$command( |\"|$)" "$SRC/doc/man/p2pctl.1" || miss "p2pctl.1 does not document '$command'"
  [[ " $completion_commands " == *" $command "* ]] || miss "the bash completion does not offer '$command'"
  grep -qE "\`$command( |\`)" "$SRC/README.md" || miss "README.md does not document '$command'"
done

if ((missing)); then exit 1; fi
echo "docs_in_step: $(echo "$options" | wc -l) p2pd options and $(echo "$commands" | wc -l) p2pctl commands documented everywhere"
