// Status and Result<T>: how edgeferry modules report errors to each other.
//
// Exceptions from third-party libraries (Paho, Boost, toml++) are caught in the
// adapter that calls them and turned into a Status; they never cross a module
// boundary. A Status is cheap to copy when OK (no allocation).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace edgeferry {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,   // caller's input is wrong; retrying the same call fails again
    kNotFound,
    kCorruption,        // stored data failed a check (checksum, decode, SQLite CORRUPT)
    kIOError,           // file system or database I/O failed (disk full is kFull)
    kFull,              // a configured bound (store cap, free-disk floor) refuses the write
    kUnavailable,       // a peer (broker, server) cannot be reached now; retryable
    kPermanent,         // a peer rejected the data for good; retrying will not help
    kCancelled,         // shutdown in progress
  };

  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string_view m) { return {Code::kInvalidArgument, m}; }
  static Status NotFound(std::string_view m) { return {Code::kNotFound, m}; }
  static Status Corruption(std::string_view m) { return {Code::kCorruption, m}; }
  static Status IOError(std::string_view m) { return {Code::kIOError, m}; }
  static Status Full(std::string_view m) { return {Code::kFull, m}; }
  static Status Unavailable(std::string_view m) { return {Code::kUnavailable, m}; }
  static Status Permanent(std::string_view m) { return {Code::kPermanent, m}; }
  static Status Cancelled(std::string_view m) { return {Code::kCancelled, m}; }

  bool ok() const { return state_ == nullptr; }
  Code code() const { return state_ ? state_->code : Code::kOk; }
  // The message without the code name; empty when OK.
  const std::string& message() const;
  // "Corruption: <message>" or "OK".
  std::string ToString() const;

  bool IsFull() const { return code() == Code::kFull; }
  bool IsCorruption() const { return code() == Code::kCorruption; }
  bool IsUnavailable() const { return code() == Code::kUnavailable; }
  bool IsPermanent() const { return code() == Code::kPermanent; }

 private:
  Status(Code code, std::string_view msg)
      : state_(std::make_shared<const State>(State{code, std::string(msg)})) {}
  struct State {
    Code code;
    std::string message;
  };
  std::shared_ptr<const State> state_;  // null means OK
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}              // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}       // NOLINT: must not be OK
  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace edgeferry
