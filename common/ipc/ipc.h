#pragma once
// The master <-> worker channel: length-prefixed, versioned messages over a
// stream socketpair, with file descriptors passed alongside (SCM_RIGHTS).
//
// Wire format of one message (little-endian):
//   u16 version | u16 type | u16 fd_count | u16 reserved | u32 payload_len | payload
// The fds of a message travel with its bytes; the receiver queues every fd it
// gets and hands the first fd_count of them to the message when it completes.

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/fd.h"

namespace weir::ipc {

inline constexpr uint16_t kProtocolVersion = 1;
inline constexpr uint32_t kMaxPayload = 64u << 20;

enum class MsgType : uint16_t {
  kHello = 1,    // master -> worker: "generation=N\n" [+ "ticket_secret=HEX\n"]
  kConfig = 2,   // master -> worker: config source name, '\0', validated config bytes
  kFdMap = 3,    // master -> worker: one listener key per line, fds attached in that order
  kReady = 4,    // worker -> master: start-up log lines (may be empty)
  kDrain = 5,    // master -> worker: stop accepting, finish in-flight work, then exit
  kStop = 6,     // master -> worker: exit now
  kFailed = 7,   // worker -> master: could not start; payload: why, one line (file:line:column:)
  kCommand = 8,  // master -> worker: a runtime-API command line (master CLI's @N prefix)
  kReply = 9,    // worker -> master: the answer to kCommand
  kState = 10,   // worker -> master: server states when they change; master -> worker: those
                 // of the previous generation (or the state file), before the fds
};

struct Message {
  MsgType type = MsgType::kHello;
  std::string payload;
  std::vector<UniqueFd> fds;
};

class Channel {
 public:
  Channel() = default;
  explicit Channel(UniqueFd fd) : fd_(std::move(fd)) {}

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  void close() { fd_.reset(); }

  // Sends one whole message, blocking if the socket is full (messages are small
  // and the peer always reads). Returns false if the peer is gone.
  bool send(MsgType type, std::string_view payload, const std::vector<int>& fds = {});

  enum class ReadStatus {
    kOk,      // read some bytes (or none available on a non-blocking fd)
    kClosed,  // the peer closed the channel
    kError,   // protocol violation or socket error; see error()
  };
  // Reads what is available (blocks if the fd is blocking).
  ReadStatus read_some();
  // The next complete message, if any.
  std::optional<Message> next();
  // Blocking helper: reads until one message is complete.
  std::optional<Message> receive();
  const std::string& error() const { return error_; }

 private:
  UniqueFd fd_;
  std::string in_;
  std::deque<UniqueFd> fds_in_;
  std::string error_;
};

// Creates a connected pair (SOCK_STREAM, close-on-exec).
bool make_pair(Channel* a, Channel* b);

}  // namespace weir::ipc
