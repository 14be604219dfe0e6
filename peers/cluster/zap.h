#pragma once
// The ZAP handler of the cluster's sockets (RFC 27, ZeroMQ Authentication
// Protocol): libzmq asks it, over inproc://zeromq.zap.01 in the agent's
// context, whether a client that completed the CURVE handshake may in. It
// answers yes for the public keys peers.nodes lists, with the node's name as
// the connection's User-Id (which the hello must match), and no for any other
// key, which the agent logs with the client's address.

#include <functional>
#include <map>
#include <string>
#include <zmq.hpp>

#include "common/config/config.h"

namespace weir::peers {

// An address as a dual-stack socket reports it, with an IPv4 client's
// "::ffff:" prefix taken off (what the configuration and the logs write).
std::string unmapped(std::string address);

class ZapHandler {
 public:
  explicit ZapHandler(zmq::context_t& ctx);
  // Binds the handler's endpoint (before any CURVE server socket). false with *error.
  bool bind(std::string* error);
  // The keys let in: every listed key of every node but this one.
  void allow(const PeersConfig& cfg);
  zmq::socket_t& socket() { return socket_; }
  // Answers the requests waiting; `refused(address, key)` for each one refused.
  void handle(const std::function<void(const std::string&, const std::string&)>& refused);

 private:
  zmq::socket_t socket_;
  std::map<std::string, std::string> node_of_key_;  // the 32 raw bytes -> node name
};

}  // namespace weir::peers
