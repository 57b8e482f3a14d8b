// p2pd: the peer daemon. Thin on purpose; everything lives in the libraries.
#include "daemon/node/daemon_main.hpp"

int main(int argc, char** argv) {
  return p2pd::node::run_daemon(argc, argv);
}
