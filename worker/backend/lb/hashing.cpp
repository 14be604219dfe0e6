// The hashing algorithms (balance: source, uri, url_param, hdr): the request's
// key picks the server through the backend's hash_type; a request without a key
// (a missing header or parameter) goes round robin.

#include "worker/backend/lb/lb.h"
#include "worker/backend/lb/roundrobin.h"

namespace weir {
namespace {

class Hashed final : public LbAlgorithm {
 public:
  explicit Hashed(std::unique_ptr<HashPicker> picker)
      : picker_(std::move(picker)), fallback_(false) {}
  bool deterministic(bool has_hash) const override { return has_hash; }
  void reset(const std::vector<Server*>& all) override { picker_->reset(all); }
  size_t pick(std::span<const LbCandidate> c, bool has_hash, uint64_t hash) override {
    if (has_hash) {
      if (std::optional<size_t> i = picker_->pick(c, hash)) return *i;
    }
    return fallback_.pick(c, false, 0);
  }

 private:
  std::unique_ptr<HashPicker> picker_;
  RoundRobin fallback_;
};

std::unique_ptr<LbAlgorithm> make(const BalanceConfig& cfg) {
  return std::make_unique<Hashed>(make_hash_picker(cfg));
}

constexpr LbAlgorithmDef kHashing[] = {
    {"source", LbKey::kSource, kLbOptHashType, make},
    {"uri", LbKey::kUri, kLbOptHashType | kLbOptDepth | kLbOptWhole, make},
    {"url_param", LbKey::kUrlParam, kLbOptHashType | kLbOptName, make},
    {"hdr", LbKey::kHeader, kLbOptHashType | kLbOptName, make},
};
const Registrar<LbAlgorithmDef> kRegister(kHashing);

}  // namespace
}  // namespace weir
