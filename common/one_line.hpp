#pragma once
// Text from users and peers ends up in error lines and logs. Escaping control
// characters keeps every error one line (CONTRACT.md) and stops anyone from
// forging log lines with embedded newlines.

#include <string>
#include <string_view>

namespace p2pd {

// Control characters and DEL become \xNN; the rest is kept as is.
std::string one_line(std::string_view text);

}  // namespace p2pd
