#pragma once
// The key a sample gives in a stick table, as track rules and stick rules
// compute it (worker/stick/actions.cpp, worker/backend/persistence.cpp).

#include <string>

#include "common/cond/condition.h"
#include "common/stick/table.h"

namespace weir {

class SampleSource;

namespace stick {

// The first value of `key` (after its converters) as a key of table t; false when
// the sample has no value, or none of the table's type. `src` alone is turned into
// a key without its text form.
bool sample_key(const cond::SampleExpr& key, const TableDef& t, SampleSource& ctx,
                std::string* out);

}  // namespace stick
}  // namespace weir
