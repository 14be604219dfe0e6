#pragma once
// What an H1ClientConnection holds only while a request is under way (issue
// 16): the HTTP/1 reader and writer state of the client side (its input and output
// buffers, the parse, the body window, a response of weir's own) and the
// HttpTransaction of the request. An idle connection (accepted and silent, or
// between keep-alive requests) holds none of it: a connection takes a block from
// its thread's free list when it reads (h1_client_connection.cpp, read_client) and
// gives it back when the read finds nothing to start a request with.
//
// Reset in two parts so that nothing of one request (or of another client)
// survives into the next: every scalar lives in H1RequestScalars (and the
// transaction's in HttpTransactionScalars) and is reset by one assignment; the containers keep
// their capacity (no allocation per request) and are cleared by clear().

#include <cstdint>
#include <string>

#include "common/event/buffer.h"
#include "worker/http/h1/h1_client_connection.h"
#include "worker/http/h1/http_codec.h"
#include "worker/http/transaction.h"

namespace weir {

struct H1RequestScalars {
  // The request, as the client sends it.
  size_t req_scan_ = 0;      // where the search for the end of the head resumes
  size_t req_head_raw_ = 0;  // raw head bytes still at the front of req_in_ (kept for a retry)
  bool req_parsed_ = false;
  bool req_after_client_end_ = false;  // the client had shut its side when the head was parsed
  int req_minor_ = 1;
  bool req_keep_alive_ = true;
  http::BodyKind req_body_ = http::BodyKind::kNone;
  uint64_t req_body_left_ = 0;      // content-length bytes not yet in the window
  size_t req_body_window_ = 0;      // body bytes at the front of req_in_ ready to send
  bool req_body_complete_ = false;  // every body byte has entered the window
  int64_t t_req_first_byte_ = 0;    // first byte of the current request head

  // The response, as the client gets it.
  bool close_after_response_ = false;  // tell the client Connection: close and close after
  size_t local_sent_ = 0;
  int64_t linger_deadline_ = 0;  // kLinger: when to stop waiting for the client's close
  // Tunnel: the FIN of one side was passed on to the other.
  bool tun_client_shut_ = false;  // client -> server direction finished
  bool tun_server_shut_ = false;  // server -> client direction finished
};

struct H1ClientConnection::RequestBlock : H1RequestScalars {
  explicit RequestBlock(ThreadContext& ctx) : txn(ctx) {}

  Buffer req_in_;   // raw bytes from the client
  Buffer res_out_;  // response head (or a generated response) for the client
  http::ChunkedWalker req_chunks_;
  std::string local_body_;  // a response weir generates itself, head and body (kFlushClose)
  HttpTransaction txn;

  // Everything but req_in_ back to its state before a request (the buffers
  // other than req_in_ must have been released). Strings keep their capacity
  // up to kKeepCapacity.
  void clear();
};

}  // namespace weir
