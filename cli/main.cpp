// p2pctl: the control tool. Thin on purpose; everything lives in p2pd_cli.
#include "cli/p2pctl_main.hpp"

int main(int argc, char** argv) {
  return p2pd::cli::run_p2pctl(argc, argv);
}
