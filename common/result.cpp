#include "common/result.hpp"

namespace p2pd {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid argument";
    case ErrorCode::not_found: return "not found";
    case ErrorCode::already_exists: return "already exists";
    case ErrorCode::permission_denied: return "permission denied";
    case ErrorCode::unavailable: return "unavailable";
    case ErrorCode::timed_out: return "timed out";
    case ErrorCode::corrupt: return "corrupt";
    case ErrorCode::io: return "i/o error";
    case ErrorCode::internal: return "internal error";
  }
  return "unknown error";
}

}  // namespace p2pd
