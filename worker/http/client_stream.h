#pragma once
// What a transaction (worker/http/transaction.h) sees of the client side of its
// request: an HTTP/1 connection, one request at a time (H1ClientConnection,
// worker/http/h1/h1_client_connection.h), and later one stream of an HTTP/2
// connection that carries several. A transaction never reads or writes the
// client socket: it asks through this interface, and the client side calls the
// transaction's events (HttpTransaction::on_request_head, on_client_gone, ...).
//
// Heads stay text plus a view: the request head is the raw HTTP/1-syntax text
// the connection holds, parsed into the thread's scratch http::MessageHead; the
// response head is handed over parsed (ResponseHead) and serialised by the
// connection in its protocol. Bodies are spans: the transaction writes request
// body bytes to the server straight out of the connection's input buffer, and the
// connection writes response body bytes straight out of the transaction's server
// input (HttpTransaction::response_body), with no copy either way.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/event/buffer.h"
#include "worker/http/h1/http_codec.h"
#include "worker/rules/rules.h"
#include "worker/upstream/upstream_connection.h"

namespace weir {

struct Proxied;
class Frontend;
namespace stick {
class Trackers;
}
struct TlsBindConfig;
namespace tls {
class Connection;
}

// A response head from a server, as the transaction passes it on: the parsed
// head (its status line text, fields and framing) or, when rules changed it, the
// edited head (status, reason, fields; rules cannot touch the framing fields).
struct ResponseHead {
  enum class Kind : uint8_t {
    kNormal,     // a final response; the connection adds its Connection field
    kWebSocket,  // a 101 to a forwarded WebSocket upgrade: a tunnel follows
    kConnect,    // a 2xx to an allowed CONNECT: a tunnel follows the blank line
  };
  const http::MessageHead& head;
  std::string_view text;               // the head as the server wrote it (`head` views it)
  const EditableHead* edit = nullptr;  // non-null: rules changed the head
  Kind kind = Kind::kNormal;
  // The exchange cannot go on after this response (a body delimited by the
  // close, an upload the server answered before its end): ask the client to close.
  bool close = false;
};

class ClientStream {
 public:
  // How an exchange that cannot go on ends toward the client.
  enum class AbortKind : uint8_t {
    kClose,  // close the connection (HTTP/2: reset the stream)
    kReset,  // a body delimited by the close was cut short: close with a reset
  };

  // The connection the request came on.
  virtual Frontend& frontend() const = 0;
  // The client's TLS layer (null: plain TCP); its handshake is done while a
  // transaction runs.
  virtual tls::Connection* client_tls() const = 0;
  virtual const TlsBindConfig* client_tls_config() const = 0;
  // The local address the client connected to (getsockname, or the
  // destination a PROXY protocol header named); false if unknown.
  virtual bool local_address(SockAddr* out) const = 0;
  // What a PROXY protocol header said of the connection (null: none came).
  virtual const Proxied* proxied() const = 0;
  // The stick-table entries the connection tracks (null until its first track).
  virtual std::unique_ptr<stick::Trackers>* trackers() = 0;

  // A buffer from the thread's pool under the connection's claim (every buffer
  // of a request is taken under it: the pool's no-deadlock argument is per
  // claim). False: wait; the connection runs again when one can be had.
  virtual bool take_buffer(Buffer& b) = 0;
  // The connection makes whatever progress it can now (after an event of the
  // transaction's own: a server socket, a queue grant, its timer).
  virtual void wake() = 0;
  // True when a write should wait for the end of the epoll batch being
  // dispatched (the connection runs again then): writes to servers leave in
  // the first round after it, writes to clients in the second.
  virtual bool defer_write(bool to_server) = 0;

  // The request head's text, while the connection still holds it (kept for a
  // replay until the response begins or a body leaves); empty once released.
  virtual std::string_view request_head() const = 0;
  virtual void release_request_head() = 0;
  // Takes in the body bytes already received (HTTP/1: walks what the input
  // buffer holds beyond the head). False when they are malformed: the request
  // was answered (on_request_body_error) or the connection closed.
  virtual bool read_request_body() = 0;
  // Request body bytes received, framed as the client sent them, ready to go to
  // the server; `complete` once the last one is in the span.
  struct BodySpan {
    const char* data;
    size_t size;
  };
  virtual BodySpan request_body() const = 0;
  virtual bool request_body_complete() const = 0;
  virtual void consume_request_body(size_t n) = 0;

  // Room for a response head (taken before the server's head is looked at:
  // nothing is decided about a response until it can be relayed). False: wait.
  virtual bool prepare_response() = 0;
  // An interim response (100 Continue, 103 Early Hints), as the server wrote it:
  // relayed to HTTP/1.1 clients, dropped for HTTP/1.0 ones. False: no room.
  virtual bool send_interim(std::string_view raw_head) = 0;
  // The response head; false when it does not fit (the transaction answers 502).
  virtual bool send_response_head(const ResponseHead& head) = 0;
  // Part of the response head is queued or sent.
  virtual bool response_started() const = 0;
  // Everything handed over (head and body taken with consume_response_body)
  // has left toward the client.
  virtual bool response_flushed() const = 0;
  // A response of weir's own: status, its header fields as HTTP/1 lines
  // ("Name: value\r\n" each) and its body (empty for a HEAD request); the
  // connection closes after it. Returns the bytes it will send (for the log),
  // 0 when it could not (the connection closed instead).
  virtual size_t send_local_response(int status, std::string_view fields, std::string body) = 0;
  // The response is complete and flushed: keep-alive, the next request, or close.
  virtual void end_response() = 0;
  // The exchange cannot go on (the transaction logged it).
  virtual void abort(AbortKind kind) = 0;
  // After a 101 or a CONNECT's 2xx has been flushed: the connection becomes a
  // tunnel over the transaction's server connection.
  virtual void start_tunnel() = 0;

  // http_reuse: the first request of the client connection never meets a
  // connection another client left (`safe`); `never` keeps the connection's
  // own server connection between its requests, attached to the client side.
  virtual bool first_request() const = 0;
  virtual std::unique_ptr<UpstreamConnection> take_private_upstream() = 0;
  virtual void keep_private_upstream(std::unique_ptr<UpstreamConnection> conn) = 0;

 protected:
  ~ClientStream() = default;
};

}  // namespace weir
