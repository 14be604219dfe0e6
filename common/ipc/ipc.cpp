#include "common/ipc/ipc.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

namespace weir::ipc {
namespace {

constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxFdsPerMessage = 250;

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

bool Channel::send(MsgType type, std::string_view payload, const std::vector<int>& fds) {
  if (!fd_ || fds.size() > kMaxFdsPerMessage || payload.size() > kMaxPayload) return false;
  char header[kHeaderSize];
  put16(header, kProtocolVersion);
  put16(header + 2, static_cast<uint16_t>(type));
  put16(header + 4, static_cast<uint16_t>(fds.size()));
  put16(header + 6, 0);
  put32(header + 8, static_cast<uint32_t>(payload.size()));

  size_t total = kHeaderSize + payload.size();
  size_t sent = 0;
  bool fds_sent = fds.empty();
  while (sent < total) {
    iovec iov[2];
    int iovcnt = 0;
    if (sent < kHeaderSize) {
      iov[iovcnt++] = {header + sent, kHeaderSize - sent};
      if (!payload.empty()) iov[iovcnt++] = {const_cast<char*>(payload.data()), payload.size()};
    } else {
      size_t off = sent - kHeaderSize;
      iov[iovcnt++] = {const_cast<char*>(payload.data()) + off, payload.size() - off};
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(iovcnt);
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
          fds_in_.emplace_back(fd);
        }
      }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
      error_ = "file descriptors were truncated";
      return ReadStatus::kError;
    }
    if (n == 0) return ReadStatus::kClosed;
    in_.append(buf, static_cast<size_t>(n));
    return ReadStatus::kOk;
  }
}

std::optional<Message> Channel::next() {
  if (in_.size() < kHeaderSize) return std::nullopt;
  uint16_t version = get16(in_.data());
  if (version != kProtocolVersion) {
    error_ = "protocol version mismatch: expected " + std::to_string(kProtocolVersion) + ", got " +
             std::to_string(version);
    fd_.reset();
    return std::nullopt;
  }
  uint32_t len = get32(in_.data() + 8);
  if (len > kMaxPayload) {
    error_ = "message too large";
    fd_.reset();
    return std::nullopt;
  }
  if (in_.size() < kHeaderSize + len) return std::nullopt;
  uint16_t nfds = get16(in_.data() + 4);
  if (fds_in_.size() < nfds) return std::nullopt;  // fds travel with the bytes; wait
  Message m;
  m.type = static_cast<MsgType>(get16(in_.data() + 2));
  m.payload = in_.substr(kHeaderSize, len);
  for (uint16_t i = 0; i < nfds; ++i) {
    m.fds.push_back(std::move(fds_in_.front()));
    fds_in_.pop_front();
  }
  in_.erase(0, kHeaderSize + len);
  return m;
}

std::optional<Message> Channel::receive() {
  for (;;) {
    if (auto m = next()) return m;
    if (!fd_) return std::nullopt;
    if (read_some() != ReadStatus::kOk) return std::nullopt;
  }
}

bool make_pair(Channel* a, Channel* b) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return false;
  *a = Channel(UniqueFd(sv[0]));
  *b = Channel(UniqueFd(sv[1]));
  return true;
}

}  // namespace weir::ipc
