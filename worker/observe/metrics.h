#pragma once
// Prometheus metrics of a worker, in the text exposition format (version 0.0.4),
// served on the path set by a frontend's `metrics:` key.

#include <string>

namespace weir {

class Worker;

std::string render_prometheus(Worker& worker);

}  // namespace weir
