#pragma once
// The master <-> worker channel: length-prefixed frames over a stream
// socketpair, each carrying one weir.proto.Envelope (common/proto/ipc.proto),
// with file descriptors passed alongside (SCM_RIGHTS).
//
// Frame (little-endian):
//   u16 format | u16 type | u16 fd_count | u16 reserved | u32 payload_len | payload
// format kFrameProtobuf: the payload is an Envelope; `type` repeats the number of
// its body's field, for a reader of a hex dump. Format kFrameText is what weir
// spoke before Protobuf (text payloads): a channel reads it and answers in it,
// so that a master and a worker from either side of that change work together
// during a package upgrade (legacy_text.h). The fds of a frame travel with its
// bytes; the receiver queues every fd it gets and hands the first fd_count of
// them to the frame when it completes.

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/fd.h"
#include "common/proto/ipc.pb.h"

namespace weir::ipc {

// The meaning of the messages: raised when one gains a meaning an older peer
// must not miss (common/proto/ipc.proto says how to add to them). 1 was the
// text protocol.
inline constexpr uint32_t kProtocolVersion = 2;

inline constexpr uint16_t kFrameText = 1;
inline constexpr uint16_t kFrameProtobuf = 2;
inline constexpr size_t kFrameHeaderSize = 12;
inline constexpr uint32_t kMaxPayload = 64u << 20;
inline constexpr size_t kMaxFdsPerMessage = 250;

struct Message {
  proto::Envelope env;
  std::vector<UniqueFd> fds;
  uint16_t frame = kFrameProtobuf;  // the format it came in
};

// Turns bytes (and the fds that came with them) into messages; no I/O, so that
// the channel and the fuzz target share it.
class Decoder {
 public:
  void append(std::string_view bytes) { in_.append(bytes); }
  void add_fd(UniqueFd fd) { fds_.push_back(std::move(fd)); }
  size_t fds_waiting() const { return fds_.size(); }

  enum class Status { kNeedMore, kMessage, kError };
  // kError leaves the decoder unusable: error() says why.
  Status next(Message* out);
  const std::string& error() const { return error_; }

 private:
  std::string in_;
  size_t pos_ = 0;  // start of the next frame in in_
  std::deque<UniqueFd> fds_;
  std::string error_;
};

// One whole frame for `env` in `format` (what Channel::send writes). false when
// the message has no form in that format (legacy_text.h) or is too large.
bool encode_frame(const proto::Envelope& env, uint16_t format, size_t fd_count, std::string* out,
                  std::string* error);

class Channel {
 public:
  Channel() = default;
  explicit Channel(UniqueFd fd) : fd_(std::move(fd)) {}

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  void close() { fd_.reset(); }

  // Sends one whole message (its protocol set to kProtocolVersion), blocking if
  // the socket is full (messages are small and the peer always reads). Returns
  // false if the peer is gone or the message cannot be written; see error().
  bool send(proto::Envelope env, const std::vector<int>& fds = {});

  enum class ReadStatus {
    kOk,      // read some bytes (or none available on a non-blocking fd)
    kClosed,  // the peer closed the channel
    kError,   // protocol violation or socket error; see error()
  };
  // Reads what is available (blocks if the fd is blocking).
  ReadStatus read_some();
  // The next complete message, if any. A frame that cannot be decoded closes
  // the channel (error() says why).
  std::optional<Message> next();
  // Blocking helper: reads until one message is complete.
  std::optional<Message> receive();
  const std::string& error() const { return error_; }

  // The format this side writes: Protobuf, or text once the peer has written
  // text (a peer from before Protobuf), or as set (a worker that a master
  // adopted from its text-speaking predecessor).
  uint16_t peer_format() const { return peer_format_; }
  void set_peer_format(uint16_t format) { peer_format_ = format; }

 private:
  UniqueFd fd_;
  Decoder decoder_;
  std::string error_;
  uint16_t peer_format_ = kFrameProtobuf;
};

// The memory file a master hands to the binary it re-executes (binary
// upgrade): one frame whose envelope carries an UpgradeState, or the text state
// of a master from before Protobuf. false with *error when it is neither, or
// names no generation.
bool decode_upgrade_state(std::string_view bytes, proto::UpgradeState* out, std::string* error);

// Creates a connected pair (SOCK_STREAM, close-on-exec).
bool make_pair(Channel* a, Channel* b);

// The name of the message an envelope carries ("hello", ...), for log lines;
// "unknown" for a body this weir does not know (a newer peer's).
const char* body_name(const proto::Envelope& env);

}  // namespace weir::ipc
