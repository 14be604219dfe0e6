// The accept side of the PROXY protocol (accept.h).
#include "worker/proxy_protocol/accept.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/cond/ip_value.h"
#include "worker/http/h1/h1_client_connection.h"
#include "worker/tcp/tcp_session.h"
#include "worker/thread_context.h"
#include "worker/worker.h"

namespace weir {

void start_client_connection(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer,
                             const tls::FrontContext* tls, std::unique_ptr<Proxied> proxied) {
  if (fe.mode() == Mode::kHttp) {
    H1ClientConnection::start(ctx, fe, std::move(fd), peer, tls, std::move(proxied));
  } else {
    TcpSession::start(ctx, fe, std::move(fd), peer, tls, std::move(proxied));
  }
}

namespace proxy_protocol {
namespace {

constexpr uint32_t kEvents = EPOLLIN | EPOLLRDHUP | EPOLLET;

bool trusted(const AcceptProxyConfig& cfg, const SockAddr& peer) {
  if (cfg.trusted.empty()) return true;
  cond::IpValue ip;
  if (!cond::ip_value_of(peer, &ip)) return false;
  for (const cond::IpNetwork& n : cfg.trusted)
    if (n.contains(ip)) return true;
  return false;
}

}  // namespace

const char* refusal_name(Refusal r) {
  switch (r) {
    case Refusal::kUntrusted:
      return "untrusted";
    case Refusal::kMissing:
      return "missing";
    case Refusal::kMalformed:
      return "malformed";
    case Refusal::kTruncated:
      return "truncated";
    case Refusal::kTimeout:
      return "timeout";
  }
  return "?";
}

void AcceptStats::refuse(Refusal r, const std::string& frontend, const SockAddr& peer,
                         const std::string& why) {
  refused_[static_cast<int>(r)].fetch_add(1, std::memory_order_relaxed);
  uint64_t held_back = 0;
  if (!log_.allow(EventLoop::monotonic_ms(), &held_back)) return;
  std::string more;
  if (held_back > 0) more = " (" + std::to_string(held_back) + " more refused since the last line)";
  log::warning("frontend '%s': connection from %s refused (%s): %s%s", frontend.c_str(),
               peer.to_string().c_str(), refusal_name(r), why.c_str(), more.c_str());
}

void HeaderWait::start(ThreadContext& ctx, Frontend& fe, const AcceptProxyConfig& cfg, UniqueFd fd,
                       const SockAddr& peer, const tls::FrontContext* tls) {
  auto s = std::make_unique<HeaderWait>(ctx, fe, std::move(fd), peer, tls);
  HeaderWait* raw = s.get();
  ctx.add_session(std::move(s));
  if (!trusted(cfg, peer)) {
    raw->refuse(Refusal::kUntrusted, "not in accept_proxy.trusted");
    return;
  }
  if (!ctx.loop().add(raw->fd_.get(), kEvents, raw)) {
    raw->close();
    return;
  }
  if (const int64_t limit = cfg.header_timeout(fe.mode(), fe.config().timeouts); limit > 0) {
    raw->timer_.set(raw->t_start_ + limit);
  }
  raw->read_header();  // the header often came with the connection
}

HeaderWait::HeaderWait(ThreadContext& ctx, Frontend& fe, UniqueFd fd, const SockAddr& peer,
                       const tls::FrontContext* tls)
    : Session(ctx),
      fe_(fe),
      fd_(std::move(fd)),
      peer_(peer),
      tls_(tls),
      timer_(ctx.loop().timers(), &HeaderWait::on_timer, this),
      t_start_(ctx.loop().now_ms()) {}

HeaderWait::~HeaderWait() = default;

void HeaderWait::on_io(uint32_t events) {
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_closed_ = true;
  if (!done_) read_header();
}

void HeaderWait::on_timer(void* self) {
  auto* w = static_cast<HeaderWait*>(self);
  if (w->done_) return;
  w->refuse(Refusal::kTimeout, "no complete header within " +
                                   std::to_string(w->ctx_.loop().now_ms() - w->t_start_) + " ms (" +
                                   std::to_string(w->seen_) + " bytes came)");
}

void HeaderWait::read_header() {
  char buf[kMaxV2];
  ssize_t n;
  do {
    n = ::recv(fd_.get(), buf, sizeof buf, MSG_PEEK);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // the next edge brings more
    refuse(Refusal::kTruncated, std::string("closed before its PROXY header was complete (") +
                                    std::strerror(errno) + ")");
    return;
  }
  if (n == 0) {
    refuse(Refusal::kTruncated, "closed after " + std::to_string(seen_) +
                                    " bytes, before its PROXY header was complete");
    return;
  }
  seen_ = static_cast<size_t>(n);
  const std::string_view in(buf, seen_);
  auto proxied = std::make_unique<Proxied>();
  size_t consumed = 0;
  std::string error;
  switch (parse(in, &proxied->header, &consumed, &error)) {
    case Status::kNeedMore:
      // A peek shows the bytes again, not the end after them: the close is an event.
      if (peer_closed_) {
        refuse(Refusal::kTruncated, "closed after " + std::to_string(seen_) +
                                        " bytes, before its PROXY header was complete");
        return;
      }
      return;  // peeked, not read: the next edge shows it again with what follows
    case Status::kError:
      refuse(starts_like_header(in) ? Refusal::kMalformed : Refusal::kMissing, error);
      return;
    case Status::kDone:
      break;
  }
  // Exactly the header: what follows it is the client's.
  size_t got = 0;
  while (got < consumed) {
    const ssize_t r = ::recv(fd_.get(), buf, consumed - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {  // cannot happen: the bytes were just peeked
      refuse(Refusal::kTruncated, "the header's bytes could not be read");
      return;
    }
    got += static_cast<size_t>(r);
  }
  done_ = true;
  timer_.stop();
  ctx_.loop().remove(fd_.get());
  ctx_.worker().proxy_stats().count_accepted();
  proxied->via = peer_;
  // The connection takes over the admission (maxconn) this session held.
  start_client_connection(ctx_, fe_, std::move(fd_), peer_, tls_, std::move(proxied));
  ctx_.remove_session(this);
}

void HeaderWait::refuse(Refusal r, const std::string& why) {
  ctx_.worker().proxy_stats().refuse(r, fe_.name(), peer_, why);
  close();
}

void HeaderWait::close() {
  if (done_ && !fd_) return;  // handed over, or closed already
  done_ = true;
  timer_.stop();
  if (fd_) {
    ctx_.loop().remove(fd_.get());
    fd_.reset();
  }
  ctx_.worker().release(fe_);
  ctx_.remove_session(this);
}

std::string HeaderWait::describe(int64_t now_ms) const {
  return "id=" + std::to_string(id()) + " proto=proxy-header frontend=" + fe_.name() +
         " src=" + peer_.to_string() +
         " state=waiting_proxy_header bytes=" + std::to_string(seen_) +
         " age=" + std::to_string((now_ms - t_start_) / 1000) + "s";
}

}  // namespace proxy_protocol
}  // namespace weir
