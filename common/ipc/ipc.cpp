#include "common/ipc/ipc.h"

#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

#include "common/ipc/legacy_text.h"

namespace weir::ipc {
namespace {

void put16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v & 0xff);
  p[1] = static_cast<char>(v >> 8);
}
void put32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint16_t get16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) | (static_cast<uint8_t>(p[1]) << 8));
}
uint32_t get32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace

const char* body_name(const proto::Envelope& env) {
  switch (env.body_case()) {
    case proto::Envelope::kHello:
      return "hello";
    case proto::Envelope::kConfiguration:
      return "configuration";
    case proto::Envelope::kState:
      return "state";
    case proto::Envelope::kListenerMap:
      return "listener map";
    case proto::Envelope::kReady:
      return "ready";
    case proto::Envelope::kFailed:
      return "failed";
    case proto::Envelope::kDrain:
      return "drain";
    case proto::Envelope::kStop:
      return "stop";
    case proto::Envelope::kCommand:
      return "command";
    case proto::Envelope::kReply:
      return "reply";
    case proto::Envelope::kUpgradeState:
      return "upgrade state";
    case proto::Envelope::kDaemonStarted:
      return "daemon started";
    case proto::Envelope::BODY_NOT_SET:
      break;
  }
  return "unknown";
}

bool encode_frame(const proto::Envelope& env, uint16_t format, size_t fd_count, std::string* out,
                  std::string* error) {
  uint16_t type = 0;
  std::string payload;
  if (format == kFrameText) {
    if (!legacy_text::encode(env, &type, &payload)) {
      *error = std::string("the ") + body_name(env) + " message has no text form";
      return false;
    }
  } else {
    type = static_cast<uint16_t>(env.body_case());
    if (!env.SerializeToString(&payload)) {
      *error = "cannot serialise the message";
      return false;
    }
  }
  if (payload.size() > kMaxPayload || fd_count > kMaxFdsPerMessage) {
    *error = "message too large";
    return false;
  }
  out->resize(kFrameHeaderSize);
  char* h = out->data();
  put16(h, format);
  put16(h + 2, type);
  put16(h + 4, static_cast<uint16_t>(fd_count));
  put16(h + 6, 0);
  put32(h + 8, static_cast<uint32_t>(payload.size()));
  out->append(payload);
  return true;
}

Decoder::Status Decoder::next(Message* out) {
  if (!error_.empty()) return Status::kError;
  std::string_view in(in_);
  in.remove_prefix(pos_);
  if (in.size() < kFrameHeaderSize) return Status::kNeedMore;
  uint16_t format = get16(in.data());
  if (format != kFrameProtobuf && format != kFrameText) {
    error_ = "the peer writes frame format " + std::to_string(format) +
             ", which this weir does not know (it reads " + std::to_string(kFrameText) + " and " +
             std::to_string(kFrameProtobuf) + ")";
    return Status::kError;
  }
  uint16_t type = get16(in.data() + 2);
  uint16_t nfds = get16(in.data() + 4);
  uint32_t len = get32(in.data() + 8);
  if (len > kMaxPayload || nfds > kMaxFdsPerMessage) {
    error_ = "message too large";
    return Status::kError;
  }
  if (in.size() < kFrameHeaderSize + len) return Status::kNeedMore;
  if (fds_.size() < nfds) return Status::kNeedMore;  // fds travel with the bytes; wait
  std::string_view payload = in.substr(kFrameHeaderSize, len);
  Message m;
  m.frame = format;
  if (format == kFrameText) {
    if (!legacy_text::decode(type, payload, &m.env, &error_)) return Status::kError;
  } else if (!m.env.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    error_ = "a message that does not decode (" + std::to_string(len) + " bytes)";
    return Status::kError;
  }
  for (uint16_t i = 0; i < nfds; ++i) {
    m.fds.push_back(std::move(fds_.front()));
    fds_.pop_front();
  }
  pos_ += kFrameHeaderSize + len;
  if (pos_ == in_.size()) {
    in_.clear();
    pos_ = 0;
  } else if (pos_ > 65536) {
    in_.erase(0, pos_);
    pos_ = 0;
  }
  *out = std::move(m);
  return Status::kMessage;
}

bool Channel::send(proto::Envelope env, const std::vector<int>& fds) {
  if (!fd_) return false;
  env.set_protocol(kProtocolVersion);
  std::string frame;
  if (!encode_frame(env, peer_format_, fds.size(), &frame, &error_)) return false;
  size_t sent = 0;
  bool fds_sent = fds.empty();
  while (sent < frame.size()) {
    iovec iov{frame.data() + sent, frame.size() - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control;
    if (!fds_sent) {
      control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        // Non-blocking channel under pressure: wait until writable.
        fd_set w;
        FD_ZERO(&w);
        FD_SET(fd_.get(), &w);
        select(fd_.get() + 1, nullptr, &w, nullptr, nullptr);
        continue;
      }
      error_ = std::string("send: ") + std::strerror(errno);
      return false;
    }
    fds_sent = true;
    sent += static_cast<size_t>(n);
  }
  return true;
}

Channel::ReadStatus Channel::read_some() {
  if (!fd_) return ReadStatus::kClosed;
  for (;;) {
    char buf[65536];
    iovec iov{buf, sizeof buf};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return ReadStatus::kOk;
      error_ = std::string("recv: ") + std::strerror(errno);
      return ReadStatus::kError;
    }
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
        size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char* data = CMSG_DATA(cm);
        for (size_t i = 0; i < count; ++i) {
          int fd;
          std::memcpy(&fd, data + i * sizeof(int), sizeof(int));
          decoder_.add_fd(UniqueFd(fd));
        }
      }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
      error_ = "file descriptors were truncated";
      return ReadStatus::kError;
    }
    if (n == 0) return ReadStatus::kClosed;
    decoder_.append(std::string_view(buf, static_cast<size_t>(n)));
    return ReadStatus::kOk;
  }
}

std::optional<Message> Channel::next() {
  Message m;
  switch (decoder_.next(&m)) {
    case Decoder::Status::kNeedMore:
      return std::nullopt;
    case Decoder::Status::kError:
      error_ = decoder_.error();
      fd_.reset();
      return std::nullopt;
    case Decoder::Status::kMessage:
      break;
  }
  // Answer in the format the peer writes: a peer from before Protobuf reads text only.
  peer_format_ = m.frame;
  return m;
}

std::optional<Message> Channel::receive() {
  for (;;) {
    if (auto m = next()) return m;
    if (!fd_) return std::nullopt;
    if (read_some() != ReadStatus::kOk) return std::nullopt;
  }
}

bool decode_upgrade_state(std::string_view bytes, proto::UpgradeState* out, std::string* error) {
  if (legacy_text::is_upgrade_state(bytes)) {
    return legacy_text::decode_upgrade_state(bytes, out, error);
  }
  Decoder d;
  d.append(bytes);
  Message m;
  Decoder::Status st = d.next(&m);
  if (st == Decoder::Status::kError) {
    *error = d.error();
    return false;
  }
  if (st == Decoder::Status::kNeedMore || m.env.body_case() != proto::Envelope::kUpgradeState) {
    *error = "not a weir master's state";
    return false;
  }
  *out = std::move(*m.env.mutable_upgrade_state());
  if (out->counts().newest() <= 0) {
    *error = "the previous master's state names no generation";
    return false;
  }
  return true;
}

bool make_pair(Channel* a, Channel* b) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return false;
  *a = Channel(UniqueFd(sv[0]));
  *b = Channel(UniqueFd(sv[1]));
  return true;
}

}  // namespace weir::ipc
