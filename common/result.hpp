#pragma once
// Expected failures as values (STYLE.md): every fallible operation in a core,
// a handler or start-up returns Result<T>. Boost 1.74 predates
// boost::system::result and C++20 has no std::expected, so this is the small
// subset we need.

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace p2pd {

enum class ErrorCode {
  invalid_argument,   // the caller asked for something malformed
  not_found,          // the thing named does not exist
  already_exists,     // it exists and may not be replaced
  permission_denied,  // the OS or a policy refused
  unavailable,        // a peer or resource cannot be reached now; retry may help
  timed_out,          // no answer within the deadline
  corrupt,            // stored or received data failed validation
  io,                 // the OS failed a read/write
  internal,           // a bug: should not happen
};

std::string_view to_string(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;  // one line, for a human; no trailing period
};

template <class... Args>
[[nodiscard]] Error make_error(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  return Error{code, fmt::format(format, std::forward<Args>(args)...)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : m_state(std::in_place_index<0>, std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : m_state(std::in_place_index<1>, std::move(error)) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool has_value() const { return m_state.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(m_state);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(m_state);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(m_state));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!has_value());
    return std::get<1>(m_state);
  }

 private:
  std::variant<T, Error> m_state;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : m_error(std::move(error)), m_failed(true) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool has_value() const { return !m_failed; }
  explicit operator bool() const { return has_value(); }
  const Error& error() const {
    assert(m_failed);
    return m_error;
  }

 private:
  Error m_error;
  bool m_failed = false;
};

}  // namespace p2pd
